package discovery

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	s, err := c.settings()
	if err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
	if s.Period != 10*time.Minute || s.Validity != 0 {
		t.Fatalf("period %v, validity %v: want 10m and the default (three periods)", s.Period, s.Validity)
	}
	if s.Rules.StableAge != 24*time.Hour || s.Rules.DropFailures != 3 || s.Rules.DropMissed != 3 || s.Rules.FastFraction != 0.125 || s.Rules.MinGuards != 3 {
		t.Fatalf("flag rules %+v", s.Rules)
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	c := DefaultConfig()
	c.Genesis, c.DataDir = "", "relative"
	c.Period, c.Validity = time.Minute, 30*time.Second
	c.DHT.Listen, c.DHT.PublicIP, c.HTTP.Listen, c.Probe.Source = "nowhere", "0.0.0.0", "x:y", "host"
	c.Crawl.Concurrency, c.Crawl.WhoisTimeout = 0, 0
	c.Probe.Burst, c.Probe.BurstSize, c.Probe.History = 0, 5000, 2
	c.Flags.StableRatio, c.Flags.DegradedLatencyFactor, c.Flags.DropAfterFailures = 1.5, 0.5, 5
	c.LogLevel, c.Metrics = "loud", "0.0.0.0:9313"
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"genesis", "data_dir", "validity", "dht.listen", "dht.public_ip", "http.listen", "probe.source",
		"crawl.concurrency", "crawl.whois_timeout", "probe.burst ", "probe.burst_size", "flags.stable_ratio",
		"flags.degraded_latency_factor", "flags.drop_after_failures 5: more than the probe.history 2", `"loud"`, "loopback",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not mention %q:\n%v", want, err)
		}
	}
}

// TestOperatorsGuideShowsTheExample keeps the configuration in docs/operators.md the real one.
func TestOperatorsGuideShowsTheExample(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/operators.md")
	if err != nil {
		t.Skip("docs not found:", err)
	}
	if !strings.Contains(string(doc), "```toml\n"+ExampleConfig+"```") {
		t.Error("docs/operators.md does not show example.toml as it is; paste `meshvpn-discovery example-config` into it")
	}
}

// TestValidityOutlivesTheNextRound: a document must still be valid when the next round's is served,
// up to a period and a half later; validity under two periods is refused.
func TestValidityOutlivesTheNextRound(t *testing.T) {
	c := DefaultConfig()
	c.Genesis, c.DataDir = "/etc/meshvpn/genesis", "/var/lib/meshvpn-discovery"
	for validity, ok := range map[time.Duration]bool{15 * time.Minute: false, 20 * time.Minute: true, 0: true} {
		c.Validity = validity
		if err := c.Validate(); (err == nil) != ok || (err != nil && !strings.Contains(err.Error(), "two periods")) {
			t.Errorf("period %v, validity %v: %v", c.Period, validity, err)
		}
	}
}
