// Package path chooses a client's circuit paths: a guard, a middle and an exit out of a
// [netdir.NetDir] (the relays the directory lists, or a relay list's), under the rules of design.md §4.
// It is the client's one path selector, with one guard rule, the guard set, whatever the relays came
// from. [Picker] is selection as a circuit manager (core/circmgr) asks for it: over the NetDir in use,
// which a new directory replaces, for an exit choice ([Picker.For]), with the rebuild's exit kept, the
// port preferred or required, the user's entry guards, and the guard set saved when a pick changed it. It is pure policy: no sockets, no
// goroutines; randomness (a *rand.Rand) and time (a clock function) are injected, and the only I/O is
// the guard file, read and written when the caller asks.
//
// # The rules, and why
//
// The exit is chosen first. It is the scarcest constraint: few relays exit, fewer allow a given port,
// and the user may have narrowed them to a country, a region or one named relay. Choosing the guard and
// middle first could leave no exit that fits beside them, or, worse, would bias the exit towards those
// that happen to fit. Tor orders its choice the same way. When no guard or middle fits a drawn exit,
// that exit is set aside and another is drawn from the rest (by the same weights), so the result is the
// distribution of exits conditioned on a complete path existing.
//
// The exit is an Exit-flagged, Running, non-Degraded relay whose port summary allows the chosen
// protocol and port (port 0 means "any": the exit must allow at least one port of that protocol), then
// filtered by the user's mode: Auto draws by measured bandwidth (the performance we can measure);
// Country and Region keep the exits of that country or region (compared without regard to case) and
// draw among them by bandwidth; Random draws uniformly, for users who would rather not favour fast
// relays; Named takes one relay, by its identity (base64, always accepted) or by its name. Names are
// not authenticated (any relay may claim any name, which is why Tor stopped trusting nicknames), so a
// name counts only when exactly one relay in the consensus carries it: a second relay claiming the
// name makes the choice fail with an error asking for the identity instead of silently taking the
// wrong relay. "Nearest to the destination" needs geolocation the directory does not carry yet.
//
// The guard comes from the client's guard set ([GuardSet]), as Tor's do. Entering the network always
// through the same few relays means that an adversary who runs some relays either is the client's
// guard for a long time or, far more likely, never is; choosing a fresh entry per circuit would hand
// every adversary relay a chance at every circuit, and a client builds many. The set holds
// [GuardTarget] guards, sampled among Guard-flagged, Running, non-Degraded relays weighted by
// bandwidth, each kept from the moment it was sampled for a random lifetime between
// [GuardLifetimeMin] and [GuardLifetimeMax] (randomised so that all guards do not rotate at once, and
// so that the rotation date does not tell how old a client's installation is). A new guard is not
// sampled in the /16 or family of a guard already in the set, since it would add no diversity. The
// path takes the first usable guard in the set's order: one that is listed, Running, still Guard-
// flagged, not Degraded, not avoided and not in the exit's /16 or family. A guard that is not usable
// now is skipped but kept until it expires, because a guard that is down now may be back soon, and
// dropping it would let anyone who can knock a guard over push the client onto new guards (Tor's rule).
// Expired guards are replaced at the next Pick. Only when no guard in the set can serve any candidate
// exit does the set grow, one guard at a time and never beyond [GuardMax], which bounds how many
// guards such an attacker can make a client try. The set lives on disk ([GuardSet.Save],
// [LoadGuardSet]) in a small strict text file, mode 0600: it says which relays the client uses, and
// whoever can write it could choose the client's guards.
//
// The middle is drawn by bandwidth among Running, non-Degraded relays.
//
// No two hops share a /16 (IPv4) or a /32 (IPv6), or a family, and no relay appears twice. Addresses
// in one /16 usually belong to one operator or hosting provider who could watch both hops; families
// are the relays an operator declares to be theirs. Two relays are one family only if each lists the
// other (mutual, as in Tor). If one declaration sufficed, a malicious relay could list every honest
// middle as its family, and every circuit through it as exit would have to take one of the attacker's
// middles; with mutual declarations a relay can only group itself with relays that agree. (Nothing
// stops an operator from hiding a family by not declaring it: families are a courtesy of honest
// operators, and the /16 rule is the check that does not depend on it.) Families are not transitive:
// A–B and B–C do not make A–C one family, again as in Tor. [Config.AllowSameSubnet] lifts the /16 rule
// for test networks that live in one subnet; families and distinct relays still hold there.
//
// Degraded relays (marked by the health monitor) take no position, and Pick's avoid list excludes
// relays for one path (the dead middle of the circuit being rebuilt, say) without touching the guard
// set.
//
// # Weights
//
// Weights are the directory's measured bandwidths. A relay with weight 0 has not been measured yet; it
// weighs as much as the lowest measured relay in the consensus (1 when none is), so that a new relay
// gets a little traffic but an adversary cannot gain share by adding unmeasured relays that claim to
// be fast, and a network that measures nothing yet (a test network) is drawn from uniformly. Weights
// above [MaxWeight] count as MaxWeight, which keeps sums from overflowing.
//
// # Errors
//
// Pick's errors name the constraint that could not be met ("no exit allows tcp/25", "no middle outside
// the guard's and exit's /16 and families") and match [ErrNoExit], [ErrNoGuard] or [ErrNoMiddle] with
// errors.Is, so that a caller can tell an exit that does not exist from a network too small to build
// around it.
package path
