package inject

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Op is one RFC 6902 JSON patch operation. The injector only adds.
type Op struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// pointerEscape escapes one JSON pointer token (RFC 6901).
func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func pointerUnescape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
}

// ApplyPatch applies "add" and "replace" operations to a document decoded
// from JSON into maps and slices, and returns the new document. Values are
// converted to the same generic form first.
func ApplyPatch(doc any, ops []Op) (any, error) {
	for i, op := range ops {
		raw, err := json.Marshal(op.Value)
		if err != nil {
			return nil, fmt.Errorf("encode patch op %d value: %w", i, err)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("decode patch op %d value: %w", i, err)
		}
		if op.Op != "add" && op.Op != "replace" {
			return nil, fmt.Errorf("apply patch op %d: unsupported op %q", i, op.Op)
		}
		if doc, err = addAt(doc, op.Path, v, op.Op == "replace"); err != nil {
			return nil, fmt.Errorf("apply patch op %d (%s %s): %w", i, op.Op, op.Path, err)
		}
	}
	return doc, nil
}

// addAt sets the value at a JSON pointer (RFC 6902 "add"; with replace,
// the target must exist and arrays are not grown).
func addAt(doc any, path string, v any, replace bool) (any, error) {
	if path == "" {
		return v, nil
	}
	if !strings.HasPrefix(path, "/") {
		return nil, errors.New("path must start with /")
	}
	tokens := strings.Split(path[1:], "/")
	for i := range tokens {
		tokens[i] = pointerUnescape(tokens[i])
	}
	return setIn(doc, tokens, v, replace)
}

func setIn(node any, tokens []string, v any, replace bool) (any, error) {
	tok, last := tokens[0], len(tokens) == 1
	switch n := node.(type) {
	case map[string]any:
		if last {
			if _, ok := n[tok]; replace && !ok {
				return nil, fmt.Errorf("no member %q to replace", tok)
			}
			n[tok] = v
			return n, nil
		}
		child, ok := n[tok]
		if !ok {
			return nil, fmt.Errorf("no member %q", tok)
		}
		c, err := setIn(child, tokens[1:], v, replace)
		if err != nil {
			return nil, err
		}
		n[tok] = c
		return n, nil
	case []any:
		if last && tok == "-" && !replace {
			return append(n, v), nil
		}
		i, err := strconv.Atoi(tok)
		if err != nil || i < 0 || i > len(n) || (i == len(n) && (replace || !last)) {
			return nil, fmt.Errorf("index %q out of range 0..%d", tok, len(n))
		}
		if last {
			if replace {
				n[i] = v
				return n, nil
			}
			return append(n[:i], append([]any{v}, n[i:]...)...), nil
		}
		c, err := setIn(n[i], tokens[1:], v, replace)
		if err != nil {
			return nil, err
		}
		n[i] = c
		return n, nil
	default:
		return nil, fmt.Errorf("cannot descend into %T at %q", node, tok)
	}
}
