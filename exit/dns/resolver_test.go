package dns

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/meshvpn/meshvpn/exit/nat"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var client = netip.MustParseAddrPort("10.99.0.2:40000")

// fakeUpstream answers from a table and records what it was asked.
type fakeUpstream struct {
	mu      sync.Mutex
	asked   []*dns.Msg
	answer  func(q *dns.Msg) (*dns.Msg, error)
	release chan struct{} // when set, Exchange waits for it (or ctx)
}

func (f *fakeUpstream) Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	f.mu.Lock()
	f.asked = append(f.asked, q.Copy())
	f.mu.Unlock()
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return f.answer(q)
}

func (f *fakeUpstream) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.asked)
}

// aRecords answers every A question with n addresses.
func aRecords(n int) func(q *dns.Msg) (*dns.Msg, error) {
	return func(q *dns.Msg) (*dns.Msg, error) {
		a := new(dns.Msg)
		a.SetReply(q)
		for i := range n {
			a.Answer = append(a.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   net.IPv4(10, 240, byte(i>>8), byte(i)),
			})
		}
		if o := q.IsEdns0(); o != nil {
			a.SetEdns0(4096, o.Do())
		}
		return a, nil
	}
}

// queryPacket is the IPv4/UDP packet a client's stub sends for m.
func queryPacket(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return udpPacket(t, wire)
}

func udpPacket(t testing.TB, payload []byte) []byte {
	t.Helper()
	pkt, err := nat.UDPv4(nil, client, netip.AddrPortFrom(Addr, Port), payload)
	if err != nil {
		t.Fatal(err)
	}
	return pkt
}

// replies collects what a Resolver sends back.
type replies struct {
	mu   sync.Mutex
	pkts [][]byte
	got  chan struct{}
}

func newReplies() *replies { return &replies{got: make(chan struct{}, 100)} }

func (r *replies) reply(p []byte) {
	r.mu.Lock()
	r.pkts = append(r.pkts, append([]byte(nil), p...))
	r.mu.Unlock()
	r.got <- struct{}{}
}

// wait returns the next answer, parsed, after checking its packet: UDP from Addr:Port to the client.
func (r *replies) wait(t *testing.T) (*dns.Msg, int) {
	t.Helper()
	select {
	case <-r.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
	}
	r.mu.Lock()
	p := r.pkts[0]
	r.pkts = r.pkts[1:]
	r.mu.Unlock()
	h, err := nat.ParseIPv4(p)
	if err != nil {
		t.Fatal(err)
	}
	if h.Proto != protoUDP || h.Src != Addr || h.SrcPort != Port || h.Dst != client.Addr() || h.DstPort != client.Port() {
		t.Fatalf("answer packet %+v", h)
	}
	a := new(dns.Msg)
	if err := a.Unpack(p[28:]); err != nil {
		t.Fatal(err)
	}
	return a, len(p) - 28
}

func (r *replies) none(t *testing.T) {
	t.Helper()
	select {
	case <-r.got:
		t.Fatal("an answer to a query that must get none")
	case <-time.After(20 * time.Millisecond):
	}
}

func handle(r *Resolver, session uint64, pkt []byte, reply func([]byte)) {
	h, err := nat.ParseIPv4(pkt)
	if err != nil || !For(h) {
		panic("not a packet for the resolver")
	}
	r.Handle(session, h, pkt, reply)
}

func TestAnswerThroughExitResolver(t *testing.T) {
	up := &fakeUpstream{answer: aRecords(1)}
	r := New(Config{Upstream: up})
	defer r.Close()
	out := newReplies()

	q := new(dns.Msg)
	q.SetQuestion("Web.MeshVPN.test.", dns.TypeA)
	q.Id = 4242
	q.SetEdns0(1232, true)
	opt := q.IsEdns0()
	opt.Option = append(opt.Option,
		&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(192, 0, 2, 0)},
		&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	handle(r, 1, queryPacket(t, q), out.reply)

	a, _ := out.wait(t)
	if a.Id != 4242 || !a.Response || a.Rcode != dns.RcodeSuccess || len(a.Answer) != 1 {
		t.Fatalf("answer %v", a)
	}
	if a.Question[0].Name != "Web.MeshVPN.test." {
		t.Fatalf("question changed to %q: the client's 0x20 spelling must come back", a.Question[0].Name)
	}
	if o := a.IsEdns0(); o == nil || !o.Do() {
		t.Fatal("an EDNS query with DO got an answer without OPT or DO")
	}
	asked := up.asked[0]
	if asked.Id == q.Id {
		t.Error("the exit's question reused the client's id")
	}
	if o := asked.IsEdns0(); o == nil || len(o.Option) != 0 || !o.Do() {
		t.Errorf("the exit's question carried the client's EDNS options (or lost DO): %v", asked)
	}
	// The answer is counted once its packet is handed on, just after the reply arrives here.
	if s := statsWhen(r, func(s Stats) bool { return s.Answered == 1 }); s.Queries != 1 || s.Answered != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// statsWhen returns the resolver's stats once cond holds for them, or after 5 s.
func statsWhen(r *Resolver, cond func(Stats) bool) Stats {
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := r.Stats()
		if cond(s) || time.Now().After(deadline) {
			return s
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLocalNamesAnsweredHere(t *testing.T) {
	up := &fakeUpstream{answer: aRecords(1)}
	r := New(Config{Upstream: up, Search: func() []string { return []string{"corp.example."} }})
	defer r.Close()
	out := newReplies()
	for _, name := range []string{"printer.local.", "LOCALHOST.", "1.0.168.192.in-addr.arpa.", "5.20.172.in-addr.arpa.",
		"db1.corp.example.", "corp.example.", "router.home.arpa.", "1.1.64.100.in-addr.arpa.",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.", "x.d.f.ip6.arpa."} {
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypePTR)
		handle(r, 1, queryPacket(t, q), out.reply)
		if a, _ := out.wait(t); a.Rcode != dns.RcodeNameError || a.Id != q.Id {
			t.Errorf("%s: rcode %s", name, dns.RcodeToString[a.Rcode])
		}
	}
	for _, name := range []string{"example.com.", "com.", "1.1.1.1.in-addr.arpa.", "notcorp.example.", "5.32.172.in-addr.arpa."} {
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeA)
		handle(r, 1, queryPacket(t, q), out.reply)
		if a, _ := out.wait(t); a.Rcode != dns.RcodeSuccess {
			t.Errorf("%s: rcode %s, want it asked of the exit's resolver", name, dns.RcodeToString[a.Rcode])
		}
	}
	if n := up.count(); n != 5 {
		t.Fatalf("the exit's resolver was asked %d questions, want only the 5 public ones", n)
	}
	if s := r.Stats(); s.Local != 10 {
		t.Fatalf("stats %+v", s)
	}
}

func TestRefused(t *testing.T) {
	up := &fakeUpstream{answer: aRecords(1)}
	r := New(Config{Upstream: up})
	defer r.Close()
	out := newReplies()
	chaos := new(dns.Msg)
	chaos.SetQuestion("version.bind.", dns.TypeTXT)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	axfr := new(dns.Msg)
	axfr.SetAxfr("example.com.")
	notify := new(dns.Msg)
	notify.SetNotify("example.com.")
	two := new(dns.Msg)
	two.SetQuestion("a.example.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	for _, c := range []struct {
		q     *dns.Msg
		rcode int
	}{{chaos, dns.RcodeRefused}, {axfr, dns.RcodeRefused}, {notify, dns.RcodeNotImplemented}, {two, dns.RcodeFormatError}} {
		handle(r, 1, queryPacket(t, c.q), out.reply)
		if a, _ := out.wait(t); a.Rcode != c.rcode {
			t.Errorf("%v: rcode %s, want %s", c.q.Question, dns.RcodeToString[a.Rcode], dns.RcodeToString[c.rcode])
		}
	}
	if up.count() != 0 {
		t.Fatal("the exit's resolver was asked a refused query")
	}
	if s := r.Stats(); s.Refused != 4 {
		t.Fatalf("stats %+v", s)
	}
}

func TestMalformedDroppedAndCounted(t *testing.T) {
	up := &fakeUpstream{answer: aRecords(1)}
	r := New(Config{Upstream: up})
	defer r.Close()
	out := newReplies()
	resp := new(dns.Msg)
	resp.SetQuestion("example.com.", dns.TypeA)
	resp.Response = true
	badLen := queryPacket(t, new(dns.Msg).SetQuestion("example.com.", dns.TypeA))
	badLen[24], badLen[25] = 0xff, 0xff // UDP length past the packet
	for name, pkt := range map[string][]byte{
		"garbage":  udpPacket(t, []byte{1, 2, 3}),
		"empty":    udpPacket(t, nil),
		"response": queryPacket(t, resp),
		"udp len":  badLen,
	} {
		handle(r, 1, pkt, out.reply)
		out.none(t)
		_ = name
	}
	handle(r, 1, udpPacket(t, make([]byte, MaxQuery+1)), out.reply)
	out.none(t)
	if s := r.Stats(); s.Malformed != 4 || s.TooBig != 1 || s.Queries != 5 || up.count() != 0 {
		t.Fatalf("stats %+v, asked %d", s, up.count())
	}
}

func TestTruncatedToWhatTheClientTakes(t *testing.T) {
	up := &fakeUpstream{answer: aRecords(200)}
	r := New(Config{Upstream: up})
	defer r.Close()
	out := newReplies()
	for _, c := range []struct {
		edns uint16 // 0: none
		want int
	}{{0, 512}, {1232, 1232}, {4096, MaxAnswer}, {100, 512}} {
		q := new(dns.Msg)
		q.SetQuestion("many.example.", dns.TypeA)
		if c.edns != 0 {
			q.SetEdns0(c.edns, false)
		}
		handle(r, 1, queryPacket(t, q), out.reply)
		a, n := out.wait(t)
		if n > c.want || !a.Truncated || len(a.Answer) == 0 {
			t.Errorf("EDNS %d: %d bytes, TC %v, %d records; want at most %d, truncated", c.edns, n, a.Truncated, len(a.Answer), c.want)
		}
		if (a.IsEdns0() != nil) != (c.edns != 0) {
			t.Errorf("EDNS %d: answer OPT %v", c.edns, a.IsEdns0())
		}
	}
}

func TestUpstreamFailureIsServFail(t *testing.T) {
	up := &fakeUpstream{answer: func(*dns.Msg) (*dns.Msg, error) { return nil, errors.New("no route") }}
	r := New(Config{Upstream: up})
	defer r.Close()
	out := newReplies()
	handle(r, 1, queryPacket(t, new(dns.Msg).SetQuestion("example.com.", dns.TypeA)), out.reply)
	if a, _ := out.wait(t); a.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s", dns.RcodeToString[a.Rcode])
	}
	// An answer to another question (a spoofed or confused resolver) is not passed on.
	up.answer = func(q *dns.Msg) (*dns.Msg, error) {
		q = q.Copy()
		q.Question[0].Name = "evil.example."
		return aRecords(1)(q)
	}
	handle(r, 1, queryPacket(t, new(dns.Msg).SetQuestion("example.com.", dns.TypeA)), out.reply)
	if a, _ := out.wait(t); a.Rcode != dns.RcodeServerFailure || len(a.Answer) != 0 {
		t.Fatalf("an answer to another question was passed on: %v", a)
	}
	if s := r.Stats(); s.ServFail != 2 || s.Answered != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestInFlightBounded(t *testing.T) {
	up := &fakeUpstream{answer: aRecords(1), release: make(chan struct{})}
	r := New(Config{Upstream: up, MaxInFlight: 3, MaxPerSession: 2})
	out := newReplies()
	q := queryPacket(t, new(dns.Msg).SetQuestion("example.com.", dns.TypeA))
	for range 3 {
		handle(r, 1, q, out.reply) // the third is one too many for session 1
	}
	handle(r, 2, q, out.reply)
	handle(r, 3, q, out.reply) // one too many in all
	if s := r.Stats(); s.Busy != 2 {
		t.Fatalf("stats %+v", s)
	}
	close(up.release)
	for range 3 {
		out.wait(t)
	}
	for deadline := time.Now().Add(10 * time.Second); r.inFlight() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("slots not released")
		}
	}
	handle(r, 3, q, out.reply) // the slots are free again
	out.wait(t)
	// Close abandons questions in flight: none of them outlives it.
	up.release = make(chan struct{})
	handle(r, 4, q, out.reply)
	r.Close()
	handle(r, 4, q, out.reply)
	if s := r.Stats(); s.Busy != 3 || s.Answered != 4 {
		t.Fatalf("stats %+v", s)
	}
}

func TestTCPRefusedWithPortUnreachable(t *testing.T) {
	r := New(Config{Upstream: &fakeUpstream{answer: aRecords(1)}})
	defer r.Close()
	syn := make([]byte, 40)
	syn[0], syn[3], syn[8], syn[9] = 0x45, 40, 64, protoTCP
	c, a := client.Addr().As4(), Addr.As4()
	copy(syn[12:], c[:])
	copy(syn[16:], a[:])
	syn[20], syn[21], syn[23], syn[32], syn[33] = 0x9c, 0x40, Port, 0x50, 0x02
	var got []byte
	handle(r, 1, syn, func(p []byte) { got = p })
	h, err := nat.ParseIPv4(got)
	if err != nil || h.Proto != 1 || h.ICMPType != 3 || h.ICMPCode != nat.CodePortUnreachable || h.Src != Addr || h.Dst != client.Addr() {
		t.Fatalf("answer to a TCP SYN: %+v %v", h, err)
	}
	if r.Stats().TCP != 1 {
		t.Fatal("not counted")
	}
}

// TestHostResolver asks a real miekg/dns server on loopback through the HostResolver, over UDP and,
// for an answer too long for it, over TCP.
func TestHostResolver(t *testing.T) {
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, q *dns.Msg) {
		a, _ := aRecords(100)(q)
		if w.LocalAddr().Network() == "udp" {
			a.Truncate(512)
		}
		w.WriteMsg(a)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", itoa(port)))
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	udp, tcp := &dns.Server{PacketConn: pc, Handler: mux}, &dns.Server{Listener: ln, Handler: mux}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	defer udp.Shutdown()
	defer tcp.Shutdown()

	h := &HostResolver{Servers: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1"), netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))}}
	q := new(dns.Msg).SetQuestion("many.example.", dns.TypeA)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := h.Exchange(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if a.Truncated || len(a.Answer) != 100 {
		t.Fatalf("answer truncated %v with %d records: the TCP retry did not happen", a.Truncated, len(a.Answer))
	}
}

func TestReadResolvConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte("# the exit's\nnameserver 10.240.0.53\nnameserver 2001:db8::53\nsearch Corp.Example lan\noptions edns0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := &HostResolver{Path: path}
	c, err := h.config()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.servers) != 2 || c.servers[0] != "10.240.0.53:53" || c.servers[1] != "[2001:db8::53]:53" {
		t.Fatalf("servers %q", c.servers)
	}
	if s := h.Search(); len(s) != 2 || s[0] != "corp.example." || s[1] != "lan." {
		t.Fatalf("search %q", s)
	}
	if _, err := readResolvConf(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("a missing file read")
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("search x\n"), 0o644)
	if _, err := readResolvConf(empty); err == nil {
		t.Fatal("a file without nameservers accepted")
	}
}
