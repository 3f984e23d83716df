package link

import (
	"strings"
	"testing"
	"time"
)

func TestValidateReportsEveryProblem(t *testing.T) {
	err := Config{
		Readers:           -1,
		DeadAfter:         time.Second,
		KeepaliveInterval: 2 * time.Second,
		HandshakeRetry:    time.Millisecond,
	}.Validate()
	if err == nil {
		t.Fatal("empty config accepted")
	}
	for _, want := range []string{"Conn", "Static", "Readers", "HandshakeRetry", "shorter than DeadAfter"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
}

func TestValidConfigAndDefaults(t *testing.T) {
	conn := udpLoopback(t)
	defer conn.Close()
	c := Config{Conn: conn, Static: newStatic(t), OnMessage: func(*Link, []byte) {}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	d := c.withDefaults()
	if d.KeepaliveInterval != DefaultKeepaliveInterval || d.DeadAfter != DefaultDeadAfter || d.RekeyAfter != DefaultRekeyAfter ||
		d.HandshakeRetry != DefaultHandshakeRetry || d.Readers != DefaultReaders || d.Logger == nil || d.Now == nil {
		t.Fatalf("defaults: %+v", d)
	}
	c.DeadAfter = time.Second
	if err := c.Validate(); err != nil {
		t.Fatalf("a short DeadAfter alone must be valid (the keepalive follows it): %v", err)
	}
	if k := c.withDefaults().KeepaliveInterval; k >= time.Second {
		t.Fatalf("keepalive %v does not follow a short DeadAfter", k)
	}
	tm := deriveTimes(Config{RekeyAfter: 2 * time.Minute, HandshakeRetry: time.Second, DeadAfter: 30 * time.Second, KeepaliveInterval: 10 * time.Second})
	if tm.rejectAfter != 3*time.Minute {
		t.Fatalf("reject after %v, want WireGuard's 3 min", tm.rejectAfter)
	}
}

func TestListenRefusesInvalidConfig(t *testing.T) {
	conn := udpLoopback(t)
	defer conn.Close()
	if _, err := Listen(Config{Conn: conn}); err == nil {
		t.Fatal("Listen accepted a config without a key")
	}
}
