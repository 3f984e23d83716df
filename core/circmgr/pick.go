package circmgr

// pickExit returns the configured exit, or a random exit other than not (when there is another).
func (m *Manager) pickExit(not string) string {
	if m.cfg.Exit != "" {
		return m.cfg.Exit
	}
	var exits []string
	for _, r := range m.cfg.Relays {
		if r.Exit && r.Name != not {
			exits = append(exits, r.Name)
		}
	}
	if len(exits) == 0 {
		return not
	}
	return exits[m.cfg.Rand.IntN(len(exits))]
}

// pickGuard returns a random relay other than the exit and not, preferring relays that are not exits
// (exit capacity is the scarce kind).
func (m *Manager) pickGuard(exit, not string) string {
	c := m.candidates(exit, false, not)
	if len(c) < 2 { // too few plain relays for a guard and a middle
		c = m.candidates(exit, true, not)
	}
	return c[m.cfg.Rand.IntN(len(c))]
}

// candidates lists the relays that may take a guard's or middle's place: not the exit nor the names
// given; other exits only when withExits is set, after the plain relays.
func (m *Manager) candidates(exit string, withExits bool, not ...string) []string {
	var plain, exits []string
	for _, r := range m.cfg.Relays {
		if r.Name == exit || contains(not, r.Name) {
			continue
		}
		if r.Exit {
			exits = append(exits, r.Name)
		} else {
			plain = append(plain, r.Name)
		}
	}
	if !withExits {
		return plain
	}
	return append(plain, exits...)
}

// pick returns the path to try at this attempt. Attempts alternate between the same guard with
// another middle (a middle is the likelier casualty, and Tor-like clients keep their guard) and another
// guard, so that whichever of the two died is routed around by the second attempt; the middle of a
// dead circuit is avoided while there is another.
func (m *Manager) pick(guard, exit, avoid string, attempt int) []Relay {
	paths := m.interleave(guard, exit, avoid, false)
	if len(paths) == 0 { // too few plain relays: exits take a guard's or middle's place too
		paths = m.interleave(guard, exit, avoid, true)
	}
	if len(paths) == 0 { // three relays in all: the only path there is
		paths = m.paths(append([]string{guard}, m.candidates(exit, true, guard)...), exit, "", true)
	}
	p := paths[attempt%len(paths)]
	return []Relay{m.relay(p[0]), m.relay(p[1]), m.relay(exit)}
}

func (m *Manager) interleave(guard, exit, avoid string, withExits bool) [][2]string {
	same := m.paths([]string{guard}, exit, avoid, withExits)
	other := m.paths(m.candidates(exit, withExits, guard), exit, avoid, withExits)
	var paths [][2]string
	for i := 0; i < len(same) || i < len(other); i++ {
		if i < len(same) {
			paths = append(paths, same[i])
		}
		if i < len(other) {
			paths = append(paths, other[i])
		}
	}
	return paths
}

// paths lists guard–middle pairs for the given guards.
func (m *Manager) paths(guards []string, exit, avoid string, withExits bool) [][2]string {
	var out [][2]string
	for _, g := range guards {
		for _, mid := range m.candidates(exit, withExits, g, avoid) {
			out = append(out, [2]string{g, mid})
		}
	}
	return out
}

func (m *Manager) relay(name string) Relay {
	for _, r := range m.cfg.Relays {
		if r.Name == name {
			return r
		}
	}
	panic("circmgr: unknown relay " + name) // names come from cfg.Relays
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
