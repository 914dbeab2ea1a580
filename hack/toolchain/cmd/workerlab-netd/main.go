// Command workerlab-netd is the offline node image's pod network: a tiny stand-in for kindnetd,
// which the Go module proxy does not serve. On every node it
//   - writes the CNI config (ptp + host-local on the node's spec.podCIDR, plus portmap),
//   - routes every other node's podCIDR via that node's InternalIP (all kind nodes share one
//     docker network, so plain routes suffice: no overlay),
//   - masquerades pod traffic that leaves the pod subnet.
// It polls the node list: a handful of nodes, a few seconds of convergence is plenty for a lab.
package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const cniConfPath = "/etc/cni/net.d/10-workerlab.conflist"

const cniConfTemplate = `{
  "cniVersion": "0.4.0",
  "name": "workerlab",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": false,
      "mtu": 1500,
      "ipam": {
        "type": "host-local",
        "dataDir": "/run/cni-ipam-state",
        "routes": [{"dst": "0.0.0.0/0"}],
        "ranges": [[{"subnet": "%s"}]]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`

func main() {
	nodeName := os.Getenv("NODE_NAME")
	podSubnet := os.Getenv("POD_SUBNET")
	if nodeName == "" || podSubnet == "" {
		log.Fatal("NODE_NAME and POD_SUBNET must be set")
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		log.Fatalf("in-cluster config: %v", err)
	}
	// Before kube-proxy programs the kubernetes Service, only the direct endpoint works.
	if ep := os.Getenv("CONTROL_PLANE_ENDPOINT"); ep != "" {
		cfg.Host = "https://" + ep
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	ensureMasquerade(podSubnet)
	for {
		if err := syncOnce(client, nodeName); err != nil {
			log.Printf("sync: %v", err)
		}
		time.Sleep(5 * time.Second)
	}
}

func syncOnce(client kubernetes.Interface, self string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range nodes.Items {
		node := &nodes.Items[i]
		if node.Spec.PodCIDR == "" {
			continue
		}
		if node.Name == self {
			if err := writeCNIConfig(node.Spec.PodCIDR); err != nil {
				return err
			}
			continue
		}
		if err := routeTo(node); err != nil {
			log.Printf("route to %s: %v", node.Name, err)
		}
	}
	return nil
}

func writeCNIConfig(podCIDR string) error {
	want := []byte(fmt.Sprintf(cniConfTemplate, podCIDR))
	if have, err := os.ReadFile(cniConfPath); err == nil && bytes.Equal(have, want) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(cniConfPath), 0o755); err != nil {
		return err
	}
	tmp := cniConfPath + ".tmp"
	if err := os.WriteFile(tmp, want, 0o644); err != nil {
		return err
	}
	log.Printf("CNI config written for podCIDR %s", podCIDR)
	return os.Rename(tmp, cniConfPath) // atomic: the kubelet never reads half a file
}

func routeTo(node *corev1.Node) error {
	var gateway net.IP
	for _, addr := range node.Status.Addresses {
		if addr.Type == corev1.NodeInternalIP {
			if ip := net.ParseIP(addr.Address); ip != nil && ip.To4() != nil {
				gateway = ip
			}
		}
	}
	if gateway == nil {
		return fmt.Errorf("no IPv4 InternalIP yet")
	}
	_, dst, err := net.ParseCIDR(node.Spec.PodCIDR)
	if err != nil {
		return err
	}
	return netlink.RouteReplace(&netlink.Route{Dst: dst, Gw: gateway})
}

func ensureMasquerade(podSubnet string) {
	rule := []string{"POSTROUTING", "-s", podSubnet, "!", "-d", podSubnet,
		"-m", "comment", "--comment", "workerlab-netd", "-j", "MASQUERADE"}
	check := append([]string{"-t", "nat", "-C"}, rule...)
	if exec.Command("iptables", check...).Run() == nil {
		return
	}
	add := append([]string{"-t", "nat", "-A"}, rule...)
	if out, err := exec.Command("iptables", add...).CombinedOutput(); err != nil {
		log.Printf("masquerade rule: %v: %s", err, out)
	}
}
