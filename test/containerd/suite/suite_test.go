// containerd's snapshotter conformance suite (snapshots/testsuite, from the containerd source
// Debian ships) run against a snapshotter served over gRPC on a unix socket. The suite reaches it
// only through containerd's own proxy client (snapshots/proxy), the client containerd uses for a
// `[proxy_plugins.NAME] type = "snapshot"` entry, and each case works in a namespace of its own
// (the containerd-namespace gRPC header), so the cases, which run in parallel, never see each
// other's keys. The case's namespace is set over the suite's own ("testsuite"), as users of
// containerd's proxy client do, so each request carries both in its header, the case's first:
// the snapshotter must read the header as containerd's servers do (the first value). After a
// case, everything it left in its namespace is removed, children first.
//
// Built offline in GOPATH mode by test/containerd/build-suite.mjs; run in the VM as
//
//	THINLAYER_SNAPSHOTTER_SOCKET=/run/snap.sock ./snapshotter-suite.test -test.v
package suite

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/proxy"
	"github.com/containerd/containerd/snapshots/testsuite"
	"google.golang.org/grpc"
)

const socketEnv = "THINLAYER_SNAPSHOTTER_SOCKET"

func TestSnapshotterConformance(t *testing.T) {
	socket := os.Getenv(socketEnv)
	if socket == "" {
		t.Fatalf("%s must name the snapshotter's unix socket", socketEnv)
	}
	conn, err := dial(socket)
	if err != nil {
		t.Fatalf("dial %s: %v", socket, err)
	}
	// The cases run in parallel, after this function returns: close the connection after them.
	t.Cleanup(func() { conn.Close() })
	client := snapshotsapi.NewSnapshotsClient(conn)

	var cases int64
	testsuite.SnapshotterSuite(t, "thinlayer", func(ctx context.Context, root string) (snapshots.Snapshotter, func() error, error) {
		ns := fmt.Sprintf("suite-%d-%d", os.Getpid(), atomic.AddInt64(&cases, 1))
		sn := &namespaced{inner: proxy.NewSnapshotter(client, "thinlayer"), ns: ns}
		return sn, func() error { return sn.removeAll() }, nil
	})
}

// dial connects the way containerd does: to unix://PATH, failing fast when nothing listens.
func dial(socket string) (*grpc.ClientConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dialer := func(ctx context.Context, target string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", strings.TrimPrefix(target, "unix://"))
	}
	return grpc.DialContext(ctx, "unix://"+socket, grpc.WithInsecure(), grpc.WithBlock(), grpc.WithContextDialer(dialer))
}

// namespaced gives every call of one case the case's own namespace, set over the namespace the
// suite put in the context (it uses one, "testsuite", for all cases).
type namespaced struct {
	inner snapshots.Snapshotter
	ns    string
	used  int32 // set by the first call: a case that made none (Rename skips itself) has nothing to remove
}

func (n *namespaced) ctx(ctx context.Context) context.Context {
	atomic.StoreInt32(&n.used, 1)
	// The suite's metadata is kept: namespaces.WithNamespace joins the header's values with the
	// latest first, so the request carries [case, testsuite] (several values, or one comma-joined
	// string on the wire), and the snapshotter must take the first, as containerd does.
	return namespaces.WithNamespace(ctx, n.ns)
}

func (n *namespaced) Stat(ctx context.Context, key string) (snapshots.Info, error) {
	return n.inner.Stat(n.ctx(ctx), key)
}
func (n *namespaced) Update(ctx context.Context, info snapshots.Info, fieldpaths ...string) (snapshots.Info, error) {
	return n.inner.Update(n.ctx(ctx), info, fieldpaths...)
}
func (n *namespaced) Usage(ctx context.Context, key string) (snapshots.Usage, error) {
	return n.inner.Usage(n.ctx(ctx), key)
}
func (n *namespaced) Mounts(ctx context.Context, key string) ([]mount.Mount, error) {
	return n.inner.Mounts(n.ctx(ctx), key)
}
func (n *namespaced) Prepare(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return n.inner.Prepare(n.ctx(ctx), key, parent, opts...)
}
func (n *namespaced) View(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return n.inner.View(n.ctx(ctx), key, parent, opts...)
}
func (n *namespaced) Commit(ctx context.Context, name, key string, opts ...snapshots.Opt) error {
	return n.inner.Commit(n.ctx(ctx), name, key, opts...)
}
func (n *namespaced) Remove(ctx context.Context, key string) error {
	return n.inner.Remove(n.ctx(ctx), key)
}
func (n *namespaced) Walk(ctx context.Context, fn snapshots.WalkFunc, filters ...string) error {
	return n.inner.Walk(n.ctx(ctx), fn, filters...)
}
func (n *namespaced) Close() error { return n.inner.Close() }

// removeAll removes what the case left in its namespace, leaves first, and fails when a pass
// removes nothing while snapshots remain (a Remove the snapshotter refuses for a childless one).
func (n *namespaced) removeAll() error {
	if atomic.LoadInt32(&n.used) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for {
		infos := map[string]snapshots.Info{}
		if err := n.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
			infos[info.Name] = info
			return nil
		}); err != nil {
			return fmt.Errorf("walk namespace %s: %w", n.ns, err)
		}
		if len(infos) == 0 {
			return nil
		}
		parents := map[string]bool{}
		for _, info := range infos {
			if info.Parent != "" {
				parents[info.Parent] = true
			}
		}
		removed := 0
		for name := range infos {
			if parents[name] {
				continue
			}
			if err := n.Remove(ctx, name); err != nil {
				return fmt.Errorf("remove %q from namespace %s: %w", name, n.ns, err)
			}
			removed++
		}
		if removed == 0 {
			return fmt.Errorf("namespace %s: %d snapshots left and none is a leaf", n.ns, len(infos))
		}
	}
}
