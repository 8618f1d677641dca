// Command etcd runs a three-member etcd cluster in one process
// (go.etcd.io/etcd/server/v3/embed, as Loom's tests do), for labs and
// examples/ha.sh: it prints the client endpoints, comma-separated, on its
// first line of output (and to -endpoints-file), and runs until SIGTERM or
// SIGINT, then removes its data. For anything but a lab, run a real etcd
// cluster (Debian's etcd-server, say).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/loom-sdn/loom/store/etcdtest"
)

func main() {
	members := flag.Int("members", 3, "how many members")
	file := flag.String("endpoints-file", "", "also write the endpoints to this file")
	flag.Parse()
	c, err := etcdtest.Start(*members)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd:", err)
		os.Exit(1)
	}
	defer c.Close()
	eps := strings.Join(c.Endpoints, ",")
	if *file != "" {
		if err := os.WriteFile(*file, []byte(eps+"\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "etcd:", err)
			os.Exit(1)
		}
	}
	fmt.Println(eps)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
