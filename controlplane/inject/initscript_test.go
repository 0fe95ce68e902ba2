package inject_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/omninode/bridge/controlplane/inject"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestInitScript runs the init container's script with the real iptables
// in a fresh network namespace, twice (a restarted pod sandbox re-runs
// it), and checks the nat rules it leaves. It needs root, unshare and
// iptables (apt-get install iptables); it skips without them.
func TestInitScript(t *testing.T) {
	t.Parallel()
	for _, bin := range []string{"unshare", "iptables", "ip6tables"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (apt-get install iptables util-linux)", bin)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	ops, _, err := newInjector(t).Patch(inject.Target{
		Meta: &metav1.ObjectMeta{Annotations: map[string]string{
			inject.AnnotationInject:    inject.Enabled,
			inject.AnnotationSkipPorts: "5432,6000-6010",
		}},
		Spec: &corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{{ContainerPort: 8000}, {ContainerPort: 9090}}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var init corev1.Container
	for _, op := range ops {
		if op.Path == "/spec/initContainers" {
			init = op.Value.([]any)[0].(corev1.Container)
		}
	}
	if init.Name != inject.InitContainerName || len(init.Command) != 3 || init.Command[0] != "sh" {
		t.Fatalf("unexpected init container %+v", init)
	}
	script := init.Command[2]
	out, err := exec.CommandContext(t.Context(), "unshare", "--net", "sh", "-c",
		`sh -c "$1" && sh -c "$1" && iptables -w -t nat -S && echo v6 && ip6tables -w -t nat -S`, "sh", script).CombinedOutput()
	if err != nil {
		t.Skipf("cannot run iptables in a new network namespace here: %v: %s", err, out)
	}
	v4, v6, _ := strings.Cut(string(out), "v6\n")
	want := []string{
		"-N OMNIBRIDGE_INBOUND",
		"-A PREROUTING -p tcp -j OMNIBRIDGE_INBOUND",
		"-A OMNIBRIDGE_INBOUND -p tcp -m tcp --dport 15006 -j RETURN",
		"-A OMNIBRIDGE_INBOUND -p tcp -m tcp --dport 15001 -j RETURN",
		"-A OMNIBRIDGE_INBOUND -p tcp -m tcp --dport 15002 -j RETURN",
		"-A OMNIBRIDGE_INBOUND -p tcp -m tcp --dport 5432 -j RETURN",
		"-A OMNIBRIDGE_INBOUND -p tcp -m tcp --dport 6000:6010 -j RETURN",
		"-A OMNIBRIDGE_INBOUND -p tcp -m tcp --dport 9090 -j RETURN",
		"-A OMNIBRIDGE_INBOUND -p tcp -j REDIRECT --to-ports 15006",
	}
	for name, rules := range map[string]string{"iptables": v4, "ip6tables": v6} {
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(rules), "\n") {
			if strings.Contains(l, "OMNIBRIDGE") {
				got = append(got, l)
			}
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s rules after two runs:\n%s\nwant exactly:\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}
