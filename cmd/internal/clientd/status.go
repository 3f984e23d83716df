package clientd

import "time"

// Status is what `meshvpn-client status` shows, as the control socket sends it (JSON).
type Status struct {
	// State is "connected", "silent" (a circuit that carries the client's data away and nothing
	// back: Silent says since when and where), "rebuilding" or "starting".
	State     string    `json:"state"`
	PID       int       `json:"pid"`
	Started   time.Time `json:"started"`
	UptimeSec float64   `json:"uptime_seconds"`
	TUN       string    `json:"tun"`
	MTU       int       `json:"mtu"`
	Circuit   Circuit   `json:"circuit"`
	Silent    *Silence  `json:"silent,omitempty"`
	Traffic   Traffic   `json:"traffic"`
	// Drops counts packets the client did not carry, by reason (IPv6, no circuit, too big, …).
	Drops         map[string]uint64 `json:"drops"`
	Builds        uint64            `json:"circuits_built"`
	BuildFailures uint64            `json:"build_failures"`
	Reroutes      []Reroute         `json:"reroutes"`
	// Replaced counts circuits replaced, make before break, at max_circuit_lifetime; Replacements
	// are the latest of them.
	Replaced     uint64        `json:"circuits_replaced"`
	Replacements []Replacement `json:"replacements,omitempty"`
	// KeyRatchets counts circuits' forward layer keys moved on by the scheduled ratchet, KeysErased
	// the hops' previous backward keys erased after the window.
	KeyRatchets uint64 `json:"key_ratchets"`
	KeysErased  uint64 `json:"keys_erased"`
	// Exit is the choice of exit in force: the config's, or the last set-exit's. ExitMoves are the
	// latest set-exits: unless one stayed, connections through the old exit were lost there.
	Exit      ExitChoiceStatus `json:"exit"`
	ExitMoves []ExitMove       `json:"exit_moves,omitempty"`
	// Refused counts packets refused on the way out (ICMP administratively prohibited came back,
	// which an exit sends for what its policy refuses), by protocol and destination port: "tcp/25".
	Refused map[string]uint64 `json:"refused,omitempty"`
	// Detours are the second circuits that carry flows the main exit refused (detour = true), and
	// NoExitAllows the refused flows no exit took: they stay refused for a while.
	Detours      []DetourStatus `json:"detours,omitempty"`
	NoExitAllows []string       `json:"no_exit_allows,omitempty"`
	// Directory is where the relays came from, when the client has a genesis file.
	Directory *DirectoryStatus `json:"directory,omitempty"`
	// NAT is how the world sees the client's socket, when the genesis file names STUN servers.
	NAT *NATStatus `json:"nat,omitempty"`
	// KillSwitch is the kill switch's state (absent with kill_switch = false).
	KillSwitch *KillSwitchStatus `json:"kill_switch,omitempty"`
}

// KillSwitchStatus says whether the kill switch is in place (network/firewall).
type KillSwitchStatus struct {
	Armed    bool   `json:"armed"`
	AllowLAN bool   `json:"allow_lan"`
	Blocked  uint64 `json:"blocked_packets"` // kept from leaving since it was armed
	Error    string `json:"error,omitempty"`
}

// Replacement is one circuit replaced at max_circuit_lifetime.
type Replacement struct {
	At          time.Time `json:"at"`
	Path        []string  `json:"path"`
	SameSession bool      `json:"same_session"` // the exit kept the session: connections went on
}

// NATStatus is the last NAT detection (network/nat).
type NATStatus struct {
	Mapping string `json:"mapping,omitempty"` // none, endpoint-independent, address/port-dependent, unknown
	Public  string `json:"public,omitempty"`  // the address the STUN servers saw
	Local   string `json:"local,omitempty"`
	Servers int    `json:"servers"` // how many answered
	Error   string `json:"error,omitempty"`
}

// DirectoryStatus describes the consensus in use.
type DirectoryStatus struct {
	Relays      int       `json:"relays"`
	Authorities int       `json:"authorities"` // whose documents agreed
	Fetched     time.Time `json:"fetched"`
}

// Circuit describes the circuit in use.
type Circuit struct {
	Hops   []Hop     `json:"hops"`
	Since  time.Time `json:"since"`
	AgeSec float64   `json:"age_seconds"`
}

// Hop is one relay of the circuit.
type Hop struct {
	Role     string `json:"role"` // guard, middle, exit
	Name     string `json:"name"`
	Address  string `json:"address"`
	Identity string `json:"identity"`
	// Link is how the client's own link to the hop carries packets (the guard only: the relays' links
	// are theirs): "direct", or through the guard's rendezvous, "punched via ADDR" (a hole punched in
	// the guard's NAT) or "relayed via ADDR".
	Link string `json:"link,omitempty"`
}

// Traffic counts what went through the tunnel.
type Traffic struct {
	PacketsOut uint64 `json:"packets_out"`
	PacketsIn  uint64 `json:"packets_in"`
	BytesOut   uint64 `json:"bytes_out"`
	BytesIn    uint64 `json:"bytes_in"`
	// Detoured counts the packets out that took a detour; RefusalsHeld the refusals held back while
	// their detours were opened.
	Detoured     uint64 `json:"packets_detoured,omitempty"`
	RefusalsHeld uint64 `json:"refusals_held,omitempty"`
}

// Silence is a circuit that has carried the client's data away with nothing back from its exit.
type Silence struct {
	Since   time.Time `json:"since"`
	Seconds float64   `json:"seconds"`
	// Hop is the first hop that did not answer a probe ("middle"), or "" when every hop answered
	// (then what is silent lies beyond the exit).
	Hop     string `json:"hop,omitempty"`
	HopName string `json:"hop_name,omitempty"`
}

// Reroute is one automatic rebuild after a circuit died.
type Reroute struct {
	Died      time.Time `json:"died"`
	GapMillis float64   `json:"gap_ms"` // how long there was no circuit: from the death the client saw to the new circuit
	// OutageMillis is how long the client had no working circuit: from when the dead one went
	// silent (its relays report a break only after their links' dead_after), or died, to the new one.
	OutageMillis float64  `json:"outage_ms"`
	Why          string   `json:"why"`
	Path         []string `json:"path"`
	SameSession  bool     `json:"same_session"` // the exit kept the session: connections survived
}
