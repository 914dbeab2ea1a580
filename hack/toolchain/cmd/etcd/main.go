// Command etcd is etcd's own server entry point, built from go.etcd.io/etcd/server/v3 because the
// root etcd module (which holds main) replaces its submodules with local paths and cannot be
// `go install`ed from the module proxy.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
