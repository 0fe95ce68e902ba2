package apiauth_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/omninode/bridge/internal/apiauth"
)

// FuzzTokenLines feeds arbitrary token-file lines to New: it must never
// panic, and every line it accepts must authenticate exactly its own token
// with its own role.
func FuzzTokenLines(f *testing.F) {
	f.Add("admin alice admin-token-0123456789abc")
	f.Add("viewer grafana 2f6c0c8e0f4b4d1c9a3e\nadmin bob 7d9b1e4c2a8f4e6b8c0d")
	f.Add("root x y")
	f.Add("admin\talice\ttoken-with-tabs-0123456789")
	f.Fuzz(func(t *testing.T, text string) {
		lines := strings.Split(text, "\n")
		a, err := apiauth.New(lines, nil)
		if err != nil {
			return
		}
		for _, l := range lines {
			fs := strings.Fields(l)
			r := httptest.NewRequest("POST", "/", nil)
			r.Header.Set("Authorization", "Bearer "+fs[2])
			p, err := a.Authenticate(r)
			if err != nil {
				t.Fatalf("accepted line %q does not authenticate its token: %v", l, err)
			}
			if want, _ := apiauth.ParseRole(fs[0]); p.Role < want {
				t.Fatalf("line %q authenticated as %v", l, p.Role)
			}
		}
	})
}
