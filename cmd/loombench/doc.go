// Command loombench is a cbench-class OpenFlow 1.3 controller benchmark: it
// emulates N switches that connect to a controller, floods it with
// PACKET_INs of hosts that a learning switch has to learn and forward, and
// counts what comes back.
//
// # Usage
//
//	loombench --controller tcp:127.0.0.1:6653 --switches 16 --macs 1000 \
//	          --mode throughput --loops 3 --duration 5s --warmup 2s
//	loombench --controller unix:/run/loom/of.sock --switches 1 --mode latency
//	loombench ceiling --listen tcp:127.0.0.1:6699   # the do-nothing controller
//
// # The emulated switches
//
// Each switch is one goroutine that owns its connection: it reads into one
// reused buffer, decodes every complete message in place (no allocation per
// message), answers what a switch must answer and writes everything a read
// produced in one write. It behaves as an OpenFlow 1.3 switch does: HELLO
// with a 1.3 version bitmap, FEATURES_REPLY with its datapath id and
// n_buffers (0 unbuffered, the default, as Open vSwitch; 256 with
// --buffered, as cbench: then every PACKET_IN is buffered, whatever
// SET_CONFIG's miss_send_len or the output action's max_len ask), ECHO, GET_CONFIG, SET_CONFIG, SET_ASYNC/GET_ASYNC,
// BARRIER, ROLE_REQUEST, the multipart requests (DESC, PORT_DESC with 16
// ports, FLOW, GROUP_DESC, METER_CONFIG and the other statistics as empty
// tables, split into parts with REPLY_MORE when they do not fit one message;
// requests with REQ_MORE answered after their last part) and ONF bundles
// (open, add, close, commit and discard are accepted and replied to). It
// does not apply FLOW_MOD, GROUP_MOD, METER_MOD or PACKET_OUT; it counts
// them. Since flows are never installed, every packet of the traffic below
// misses and reaches the controller: like cbench, loombench measures the
// controller's packet-in path, not a datapath.
//
// The PACKET_INs come from a table-miss flow: the switch remembers the
// lowest table in which the controller installed a priority-0, match-all
// flow that outputs to CONTROLLER and uses that table id and cookie (table
// 0, cookie 0 until it sees one).
//
// # Traffic
//
// Switch s has --macs hosts; host h has MAC 02:ss:ss:hh:hh:hh and sits on
// port 1+h%16. Every PACKET_IN carries a 64-byte IPv4/UDP frame from the
// next host in turn (cycling) to another host of the same switch on a
// different port, so a learning switch learns every source and then answers
// with FLOW_MODs (when it installs a flow) and a PACKET_OUT that forwards the
// frame. Each frame carries a 32-bit tag that identifies it; the tag is also
// the PACKET_IN's xid and, buffered, its buffer_id. A PACKET_IN is
// answered by the reply that identifies it: a PACKET_OUT carrying its frame,
// a FLOW_MOD or PACKET_OUT naming its buffer, or (the ceiling controller) a
// reply echoing its xid. FLOW_MODs without a buffer are counted as responses
// but answer nothing. A PACKET_IN not answered within --answer-timeout is
// counted as lost and its place in the window is reused.
//
// # Modes
//
// throughput: every switch keeps --window PACKET_INs in flight and sends a
// new one as each is answered (cbench fills its socket instead; a window
// keeps the controller's queues, and so the latencies, bounded). The figure
// is responses per second: FLOW_MODs plus PACKET_OUTs, cbench's count. Since
// a learning switch answers a PACKET_IN with one or two messages depending
// on its design, loombench also reports answered PACKET_INs per second, the
// figure to compare controllers by.
//
// latency: one PACKET_IN in flight per switch; the latency of each is the
// time from its write to the first response (FLOW_MOD or PACKET_OUT) that
// arrives while it is in flight; the next is sent once it is answered.
//
// Each run connects every switch, waits until all of them have completed the
// handshake and the controller's initial burst (flow dumps, flow-mods,
// bundles and barriers of its reconciliation) has been quiet for --settle,
// then runs traffic for --warmup (not measured: the controller learns every
// host) and --loops loops of --duration. It reports one sample per second,
// one figure per loop and min/max/avg/stddev over loops.
//
// # The ceiling
//
// "loombench ceiling" is a do-nothing controller: it completes the
// handshake and answers every PACKET_IN with one pre-encoded FLOW_MOD (its
// xid and buffer_id patched in). Benchmarked the same way on the same
// machine, it shows the limit of the method: what loopback TCP, the
// scheduler and loombench itself allow.
package main
