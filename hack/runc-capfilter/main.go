// Command runc-capfilter is a docker runtime that runs runc after removing, from the OCI spec,
// every capability this machine's bounding set lacks.
//
// Why: some sandboxed VMs (this project's CI among them) drop a capability such as
// CAP_SYS_RESOURCE from every process's bounding set. `docker run --privileged` (which kind
// uses for its nodes) then asks runc for all capabilities and fails with "unable to apply caps:
// operation not permitted". Filtering the spec keeps --privileged meaning "everything this
// machine can grant". hack/ensure-docker.sh installs it only where the bounding set is short.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Linux capability names by number (capability.h), up to CAP_CHECKPOINT_RESTORE.
var capNames = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
	"IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
	"LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
	"WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

const realRunc = "/usr/sbin/runc"

func main() {
	missing := missingCapabilities()
	if len(missing) > 0 {
		for i, arg := range os.Args {
			if i+1 >= len(os.Args) {
				break
			}
			switch arg {
			case "--bundle", "-b":
				filterFile(os.Args[i+1]+"/config.json", missing, true)
			case "--process", "-p":
				filterFile(os.Args[i+1], missing, false)
			}
		}
	}
	runc := os.Getenv("RUNC_CAPFILTER_RUNC")
	if runc == "" {
		runc = realRunc
	}
	args := append([]string{runc}, os.Args[1:]...)
	if err := syscall.Exec(runc, args, os.Environ()); err != nil {
		fmt.Fprintf(os.Stderr, "runc-capfilter: exec %s: %v\n", runc, err)
		os.Exit(127)
	}
}

// missingCapabilities returns "CAP_X" names absent from this process's bounding set.
func missingCapabilities() map[string]bool {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(status), "\n") {
		if !strings.HasPrefix(line, "CapBnd:") {
			continue
		}
		bits, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(line, "CapBnd:")), 16, 64)
		if err != nil {
			return nil
		}
		missing := map[string]bool{}
		for n, name := range capNames {
			if bits&(1<<uint(n)) == 0 {
				missing["CAP_"+name] = true
			}
		}
		return missing
	}
	return nil
}

// filterFile drops the missing capabilities from an OCI spec (config.json) or process.json.
func filterFile(path string, missing map[string]bool, isSpec bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var doc map[string]any
	if json.Unmarshal(raw, &doc) != nil {
		return
	}
	process := doc
	if isSpec {
		p, ok := doc["process"].(map[string]any)
		if !ok {
			return
		}
		process = p
	}
	caps, ok := process["capabilities"].(map[string]any)
	if !ok {
		return
	}
	for set, list := range caps {
		names, ok := list.([]any)
		if !ok {
			continue
		}
		kept := names[:0]
		for _, n := range names {
			if s, ok := n.(string); !ok || !missing[s] {
				kept = append(kept, n)
			}
		}
		caps[set] = kept
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return
	}
	_ = os.WriteFile(path, out, 0o644)
}
