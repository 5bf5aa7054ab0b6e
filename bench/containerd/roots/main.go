// The container-root benchmark and the devmapper audit, run in the VM by bench/vm/containerd.sh.
//
//	roots -n 50 -mnt DIR -thinlayer SOCKET -devmapper-pool NAME -devmapper-root DIR -overlay-root DIR
//
// makes, on each snapshotter, a committed parent with a few files, then N container roots on it,
// each Prepare + Mounts + mount + umount + Remove, one root per snapshotter in turn (the order
// rotating every round), and prints `TL-BENCH-ROOTS {json}` with every root's time in
// milliseconds. thinlayer is reached as containerd reaches it, through containerd's proxy client
// over its socket; containerd's devmapper and overlayfs snapshotters are containerd's own code
// (snapshots/devmapper, snapshots/overlay) linked in, as containerd runs them in its process.
//
//	audit -devmapper-root DIR -devmapper-pool NAME
//
// prints `TL-BENCH-DMAUDIT {json}`: the devices in the devmapper snapshotter's metadata, by state,
// and their thin ids (containerd must be stopped: the database is locked while it runs).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/devmapper"
	"github.com/containerd/containerd/snapshots/overlay"
	"github.com/containerd/containerd/snapshots/proxy"
	"google.golang.org/grpc"
)

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: roots|audit [flags]"))
	}
	var err error
	switch os.Args[1] {
	case "roots":
		err = roots(os.Args[2:])
	case "audit":
		err = audit(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "bench-roots: %v\n", err)
	fmt.Printf("TL-BENCH-ERR %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	os.Exit(1)
}

type side struct {
	name string
	sn   snapshots.Snapshotter
	ms   []float64
	// step times, summed over the roots
	steps map[string]float64
}

func roots(args []string) error {
	fs := flag.NewFlagSet("roots", flag.ExitOnError)
	n := fs.Int("n", 50, "roots per snapshotter")
	mnt := fs.String("mnt", "/run/bench-roots", "mount directory")
	tl := fs.String("thinlayer", "", "thinlayer snapshotter socket")
	dmPool := fs.String("devmapper-pool", "", "devmapper thin-pool name")
	dmRoot := fs.String("devmapper-root", "", "devmapper root_path")
	ovRoot := fs.String("overlay-root", "", "overlayfs root")
	fs.Parse(args)
	ctx := namespaces.WithNamespace(context.Background(), "bench")

	var sides []*side
	if *tl != "" {
		conn, err := grpc.Dial("unix://"+*tl, grpc.WithInsecure(), grpc.WithBlock(), grpc.WithTimeout(30*time.Second),
			grpc.WithContextDialer(func(ctx context.Context, target string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", strings.TrimPrefix(target, "unix://"))
			}))
		if err != nil {
			return fmt.Errorf("dial thinlayer: %w", err)
		}
		defer conn.Close()
		sides = append(sides, &side{name: "thinlayer", sn: proxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), "thinlayer")})
	}
	if *dmPool != "" {
		sn, err := devmapper.NewSnapshotter(ctx, &devmapper.Config{RootPath: *dmRoot, PoolName: *dmPool, BaseImageSize: "256MB", BaseImageSizeBytes: 256 << 20, FileSystemType: "ext4"})
		if err != nil {
			return fmt.Errorf("devmapper: %w", err)
		}
		defer sn.Close()
		sides = append(sides, &side{name: "devmapper", sn: sn})
	}
	if *ovRoot != "" {
		sn, err := overlay.NewSnapshotter(*ovRoot)
		if err != nil {
			return fmt.Errorf("overlayfs: %w", err)
		}
		defer sn.Close()
		sides = append(sides, &side{name: "overlayfs", sn: sn})
	}
	run := fmt.Sprintf("%d", time.Now().UnixNano())
	for _, s := range sides {
		s.steps = map[string]float64{}
		if err := makeParent(ctx, s, *mnt, run); err != nil {
			return fmt.Errorf("%s: parent: %w", s.name, err)
		}
	}
	for i := 0; i < *n; i++ {
		for j := range sides {
			s := sides[(i+j)%len(sides)]
			ms, err := oneRoot(ctx, s, *mnt, fmt.Sprintf("root-%s-%d", run, i), "parent-"+run)
			if err != nil {
				return fmt.Errorf("%s: root %d: %w", s.name, i, err)
			}
			s.ms = append(s.ms, ms)
		}
	}
	out := map[string]interface{}{}
	for _, s := range sides {
		if err := s.sn.Remove(ctx, "parent-"+run); err != nil {
			return fmt.Errorf("%s: remove parent: %w", s.name, err)
		}
		out[s.name] = map[string]interface{}{"ms": s.ms, "steps": s.steps}
	}
	b, _ := json.Marshal(out)
	fmt.Printf("TL-BENCH-ROOTS %s\n", b)
	return nil
}

func makeParent(ctx context.Context, s *side, mnt, run string) error {
	key := "parent-active-" + run
	mounts, err := s.sn.Prepare(ctx, key, "")
	if err != nil {
		return err
	}
	dir := filepath.Join(mnt, s.name+"-parent")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := mount.All(mounts, dir); err != nil {
		return err
	}
	for i := 0; i < 20; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("file-%d", i)), []byte(strings.Repeat("x", 4096)), 0o644); err != nil {
			mount.UnmountAll(dir, 0)
			return err
		}
	}
	if err := mount.UnmountAll(dir, 0); err != nil {
		return err
	}
	return s.sn.Commit(ctx, "parent-"+run, key)
}

func oneRoot(ctx context.Context, s *side, mnt, key, parent string) (float64, error) {
	dir := filepath.Join(mnt, s.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	t0 := time.Now()
	step := func(name string, since time.Time) time.Time {
		now := time.Now()
		s.steps[name] += float64(now.Sub(since).Microseconds()) / 1000
		return now
	}
	if _, err := s.sn.Prepare(ctx, key, parent); err != nil {
		return 0, fmt.Errorf("prepare: %w", err)
	}
	t := step("prepare", t0)
	mounts, err := s.sn.Mounts(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("mounts: %w", err)
	}
	t = step("mounts", t)
	if err := mount.All(mounts, dir); err != nil {
		return 0, fmt.Errorf("mount %v: %w", mounts, err)
	}
	t = step("mount", t)
	if _, err := os.Stat(filepath.Join(dir, "file-0")); err != nil {
		mount.UnmountAll(dir, 0)
		return 0, fmt.Errorf("the parent's file is not in the root: %w", err)
	}
	t = time.Now()
	if err := mount.UnmountAll(dir, 0); err != nil {
		return 0, fmt.Errorf("umount: %w", err)
	}
	t = step("umount", t)
	if err := s.sn.Remove(ctx, key); err != nil {
		return 0, fmt.Errorf("remove: %w", err)
	}
	step("remove", t)
	// The existence check is not timed.
	return float64(time.Since(t0).Microseconds())/1000 - 0, nil
}

func audit(args []string) error {
	fs := flag.NewFlagSet("audit", flag.ExitOnError)
	root := fs.String("devmapper-root", "", "devmapper root_path")
	pool := fs.String("devmapper-pool", "", "devmapper thin-pool name")
	fs.Parse(args)
	// The pool device's own database (device names, thin ids, states): ROOT/POOL.db.
	db := filepath.Join(*root, *pool+".db")
	if _, err := os.Stat(db); err != nil {
		return err
	}
	md, err := devmapper.NewPoolMetadata(db)
	if err != nil {
		return err
	}
	defer md.Close()
	states := map[string]int{}
	var ids []uint32
	var faultyIDs []uint32
	err = md.WalkDevices(context.Background(), func(info *devmapper.DeviceInfo) error {
		states[info.State.String()]++
		ids = append(ids, info.DeviceID)
		if info.State == devmapper.Faulty {
			faultyIDs = append(faultyIDs, info.DeviceID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	b, _ := json.Marshal(map[string]interface{}{"states": states, "ids": ids, "faultyIds": faultyIDs})
	fmt.Printf("TL-BENCH-DMAUDIT %s\n", b)
	return nil
}
