package main

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshvpn/meshvpn/core/genesis"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

func TestInitWritesAGenesisTheNodesRead(t *testing.T) {
	var auths []string
	for i := range 3 {
		id, _ := keys.GenerateIdentity(rand.Reader)
		auths = append(auths, id.Public().String()+"@http://10.0.0."+string(rune('1'+i))+":8080,auth"+string(rune('1'+i)))
	}
	g, err := genesisFrom("demo", auths, 0, []string{"10.0.0.9:6881"}, []string{"10.0.0.9:3478"})
	if err != nil {
		t.Fatal(err)
	}
	if g.Threshold != 2 {
		t.Fatalf("default threshold of 3 authorities: %d", g.Threshold)
	}
	dir := t.TempDir()
	path, err := writeNetwork(g, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(path)
	back, err := genesis.Parse(text)
	if err != nil || back.NetworkID != g.NetworkID || len(back.Authorities) != 3 {
		t.Fatalf("%v %+v", err, back)
	}
	client, _ := os.ReadFile(filepath.Join(dir, "client.toml"))
	if !strings.Contains(string(client), path) {
		t.Fatalf("client.toml does not name the genesis: %s", client)
	}
	if _, err := writeNetwork(g, dir, true); err == nil {
		t.Fatal("an existing genesis file was replaced")
	}
}

func TestInitReportsEveryProblem(t *testing.T) {
	_, err := genesisFrom("demo", []string{"nokey@http://x", "also-bad"}, 0, []string{"nope"}, []string{"1.2.3.4"})
	if err == nil {
		t.Fatal("bad flags accepted")
	}
	for _, want := range []string{`"nokey@http://x"`, `"also-bad"`, `--bootstrap "nope"`, `--stun "1.2.3.4"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s: %v", want, err)
		}
	}
}
