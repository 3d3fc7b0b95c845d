package kafka

import (
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Embedded is the in-process broker (franz-go's kfake) used when no brokers
// are configured. Its log is persisted under a directory so a restart keeps
// the topics, committed offsets and records.
type Embedded struct {
	cluster *kfake.Cluster
}

// StartEmbedded starts the in-process broker persisting under dir, listening
// on port (0 picks a free one).
func StartEmbedded(dir string, port int, partitions int32) (*Embedded, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded kafka: data dir: %w", err)
	}
	opts := []kfake.Opt{
		kfake.DataDir(dir),
		kfake.DefaultNumPartitions(int(partitions)),
		kfake.ClusterID("trailwatch-embedded"),
		kfake.NumBrokers(1),
		// The embedded log keeps audit records: fsync each batch so an
		// acknowledged record survives a crash, as a collector checkpoint
		// relies on it.
		kfake.SyncWrites(),
	}
	if port > 0 {
		opts = append(opts, kfake.Ports(port))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	return &Embedded{cluster: c}, nil
}

// Addrs returns the broker addresses to dial.
func (e *Embedded) Addrs() []string { return e.cluster.ListenAddrs() }

// Close stops the broker and flushes its log to disk.
func (e *Embedded) Close() { e.cluster.Close() }
