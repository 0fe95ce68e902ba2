// Package patterns reduces failure messages to templates and groups them, in
// the spirit of the Drain log-template miner (He et al., ICWS 2017): variable
// parts (numbers, UUIDs, hex ids, IPs and hosts, quoted values, e-mails,
// URLs) are masked first, then messages with the same token count and the
// same leading token are matched against the groups' templates by the share
// of equal tokens; a match above the similarity threshold joins the group and
// turns the differing positions into a wildcard. It owns no I/O; the analyzer
// persists groups. Not safe for concurrent use.
package patterns

import (
	"regexp"
	"strings"
)

// Wildcard replaces the tokens in which a group's messages differ.
const Wildcard = "<*>"

var maskers = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"']+`), "<URL>"},
	{regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`), "<EMAIL>"},
	{regexp.MustCompile(`"[^"]*"|'[^']*'|` + "`[^`]*`"), "<QUOTED>"},
	{regexp.MustCompile(`\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b`), "<UUID>"},
	{regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b`), "<IP>"},
	{regexp.MustCompile(`\[?[0-9a-fA-F]{0,4}(:[0-9a-fA-F]{0,4}){2,7}\]?(:\d+)?`), "<IP>"},
	{regexp.MustCompile(`\b([a-zA-Z0-9-]+\.)+(local|internal|svc|cluster|com|net|org|io|dev|cloud)(:\d+)?\b`), "<HOST>"},
	{regexp.MustCompile(`\b[a-zA-Z][a-zA-Z0-9-]*:\d{2,5}\b`), "<HOST>"},
	{regexp.MustCompile(`\b(0x)?[0-9a-fA-F]*[0-9][0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\b|\b(0x)?[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*[0-9][0-9a-fA-F]*\b`), "<HEX>"},
	{regexp.MustCompile(`[-+]?\b\d+(\.\d+)?([eE][-+]?\d+)?(ms|s|us|µs|ns|m|h|b|kb|mb|gb|%)?\b`), "<NUM>"},
}

// hexMin is the shortest run of hex digits masked as an id; shorter runs
// with letters are likely words ("cafe", "dead").
const hexMin = 6

// Mask replaces the variable parts of a message by placeholders.
func Mask(msg string) string {
	for _, m := range maskers {
		if m.repl == "<HEX>" {
			msg = m.re.ReplaceAllStringFunc(msg, func(s string) string {
				if len(strings.TrimPrefix(s, "0x")) < hexMin {
					return s
				}
				return m.repl
			})
			continue
		}
		msg = m.re.ReplaceAllString(msg, m.repl)
	}
	return msg
}

// Tokens masks a message and splits it into tokens.
func Tokens(msg string) []string { return strings.Fields(Mask(msg)) }

// Group is one template and the messages it stands for.
type Group struct {
	// ID is stable for the group's life (assigned by the caller's NewID).
	ID     string
	Tokens []string
	// Size counts the messages matched.
	Size uint64
	// Merges counts the messages that widened the template.
	Merges uint64
}

// Template is the group's template as text.
func (g *Group) Template() string { return strings.Join(g.Tokens, " ") }

// Confidence is how specific the template is: the share of its tokens that
// are not wildcards, raised toward 1 as the group grows.
func (g *Group) Confidence() float64 {
	if len(g.Tokens) == 0 {
		return 0
	}
	fixed := 0
	for _, t := range g.Tokens {
		if t != Wildcard {
			fixed++
		}
	}
	spec := float64(fixed) / float64(len(g.Tokens))
	support := 1 - 1/float64(g.Size+1)
	return spec * (0.5 + 0.5*support)
}

// Miner groups messages.
type Miner struct {
	// Similarity is the share of equal tokens (placeholders and wildcards
	// included) a message needs to join a group. Default 0.6.
	Similarity float64
	// MaxGroups bounds the groups per (length, first token) leaf. Default 64.
	MaxGroups int
	// NewID names a new group from its first template; a deterministic
	// function (a hash) gives every replica the same id for the same failure.
	NewID  func(tokens []string) string
	leaves map[string][]*Group
}

// NewMiner returns a miner with the default similarity.
func NewMiner(newID func(tokens []string) string) *Miner {
	return &Miner{Similarity: 0.6, MaxGroups: 64, NewID: newID, leaves: map[string][]*Group{}}
}

func leafKey(toks []string) string {
	first := ""
	if len(toks) > 0 {
		first = toks[0]
		if strings.HasPrefix(first, "<") {
			first = "<>"
		}
	}
	return string(rune('0'+min(len(toks), 200))) + "|" + first
}

// Match finds or creates the group of msg; changed is true when the group is
// new or its template widened. Size is incremented by n (0 to match only).
func (m *Miner) Match(msg string, n uint64) (g *Group, changed bool) {
	toks := Tokens(msg)
	if len(toks) == 0 {
		toks = []string{"<EMPTY>"}
	}
	key := leafKey(toks)
	var best *Group
	bestSim := -1.0
	for _, c := range m.leaves[key] {
		if len(c.Tokens) != len(toks) {
			continue
		}
		eq := 0
		for i, t := range toks {
			if c.Tokens[i] == t || c.Tokens[i] == Wildcard {
				eq++
			}
		}
		sim := float64(eq) / float64(len(toks))
		if sim > bestSim {
			best, bestSim = c, sim
		}
	}
	if best != nil && bestSim >= m.Similarity {
		for i, t := range toks {
			if best.Tokens[i] != t && best.Tokens[i] != Wildcard {
				best.Tokens[i] = Wildcard
				changed = true
			}
		}
		if changed {
			best.Merges++
		}
		best.Size += n
		return best, changed
	}
	g = &Group{ID: m.NewID(toks), Tokens: toks, Size: n}
	leaf := m.leaves[key]
	if len(leaf) >= m.MaxGroups {
		// Keep the leaf bounded: the smallest group gives way.
		small := 0
		for i, c := range leaf {
			if c.Size < leaf[small].Size {
				small = i
			}
		}
		leaf = append(leaf[:small], leaf[small+1:]...)
	}
	m.leaves[key] = append(leaf, g)
	return g, true
}

// Restore puts a persisted group back (on restart).
func (m *Miner) Restore(g *Group) {
	key := leafKey(g.Tokens)
	m.leaves[key] = append(m.leaves[key], g)
}
