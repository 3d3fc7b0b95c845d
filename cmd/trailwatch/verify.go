package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/internal/integrity"
	"github.com/trailwatch/trailwatch/internal/kafka"
	"github.com/trailwatch/trailwatch/internal/pipeline"
)

// newIntegrity builds the integrity stage's handler and creates its topic
// (unlimited retention: checkpoints must outlive the raw records).
func (a *app) newIntegrity(ctx context.Context) (*integrity.Checkpointer, error) {
	ic, kc := a.cfg.Integrity, a.cfg.Kafka
	signer, err := integrity.LoadSigner(ic.SigningKeyFile)
	if err != nil {
		return nil, fmt.Errorf("integrity.signing_key_file: %w", err)
	}
	if err := integrity.EnsureTopic(ctx, a.prod, kc.Partitions, kc.ReplicationFactor, kc.Topics.Integrity); err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	src := integrity.NewKafkaSource(a.base, kc.Topics.Raw, kc.Topics.Integrity)
	var sink *integrity.FileSink
	if ic.CheckpointFile != "" {
		sink = integrity.NewFileSink(ic.CheckpointFile)
	}
	a.log.Info("integrity checkpoints", "key_id", signer.KeyID(), "topic", kc.Topics.Integrity, "file", ic.CheckpointFile)
	h, err := integrity.NewCheckpointer(ic, kc.Topics.Raw, kc.Topics.Integrity, signer, src.Last, src.Records, sink, a.log.With("stage", stageIntegrity))
	if err != nil {
		return nil, err
	}
	// Signs the tail of partitions gone quiet; stops with the stages.
	a.background = append(a.background, func(ctx context.Context) {
		h.RunFlush(ctx, func(ctx context.Context, recs []*kgo.Record) error { return pipeline.Produce(ctx, a.prod, recs) })
	})
	return h, nil
}

// fileSource verifies against a checkpoint file instead of the topic.
type fileSource struct {
	*integrity.KafkaSource
	cks []integrity.Checkpoint
}

func (f fileSource) Checkpoints(context.Context) ([]integrity.Checkpoint, []integrity.Finding, error) {
	return f.cks, nil, nil
}

func cmdVerify(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("verify [-c FILE] [--from TIME] [--to TIME] [--public-key FILE]… [--partition N]… [--checkpoints FILE] [--json]",
		"Recompute the hash chains of the raw topic and check them against the signed\n"+
			"checkpoints. Reports every altered, missing, reordered or inserted record and\n"+
			"every gap between checkpoints, with partition and offset; exits 1 if any.\n"+
			"TIME is RFC 3339 or a duration before now (\"24h\"). With no brokers configured\n"+
			"it opens the embedded broker's log under data_dir (stop `trailwatch run` first).\n"+
			"`verify --gen-key PREFIX` writes a new key pair PREFIX.key and PREFIX.pub.\n"+
			"See docs/integrity.md.", stdout, stderr)
	cfgPath := fs.StringP("config", "c", "", "YAML configuration file")
	from := fs.String("from", "", "first record time to check (default: all history)")
	to := fs.String("to", "", "last record time to check (default: now)")
	pubs := fs.StringArray("public-key", nil, "public key file (PEM or base64; repeatable; default integrity.public_key_file)")
	parts := fs.Int32Slice("partition", nil, "raw partition to check (repeatable; default all)")
	ckFile := fs.String("checkpoints", "", "read checkpoints from this file instead of the integrity topic")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	strict := fs.Bool("strict", false, "records not yet covered by a checkpoint are a failure")
	genKey := fs.String("gen-key", "", "write a new ed25519 key pair to PREFIX.key and PREFIX.pub and exit")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *genKey != "" {
		k, p, err := integrity.GenerateKey(*genKey)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "private key %s (keep secret; integrity.signing_key_file)\npublic key  %s (give to auditors; --public-key)\n", k, p)
		return nil
	}
	cfg, err := loadConfig(*cfgPath, nil, nil)
	if err != nil {
		return err
	}
	opts := integrity.Options{Partitions: *parts, FailUncovered: *strict, Keys: map[string]ed25519.PublicKey{}}
	now := time.Now()
	if opts.From, err = parseWhen(*from, now); err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	if opts.To, err = parseWhen(*to, now); err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	if len(*pubs) == 0 && cfg.Integrity.PublicKeyFile != "" {
		*pubs = []string{cfg.Integrity.PublicKeyFile}
	}
	if len(*pubs) == 0 {
		fmt.Fprintln(stderr, "trailwatch verify: a public key is required (--public-key or integrity.public_key_file)")
		return errUsage
	}
	for _, f := range *pubs {
		pub, err := integrity.LoadPublicKey(f)
		if err != nil {
			return err
		}
		opts.Keys[integrity.KeyID(pub)] = pub
	}
	kc := cfg.Kafka
	if len(kc.Brokers) == 0 {
		emb, err := kafka.StartEmbedded(filepath.Join(cfg.DataDir, "kafka"), 0, kc.Partitions)
		if err != nil {
			return err
		}
		defer emb.Close()
		kc.Brokers = emb.Addrs()
	}
	base, err := kc.Opts()
	if err != nil {
		return err
	}
	var src integrity.Source = integrity.NewKafkaSource(base, kc.Topics.Raw, kc.Topics.Integrity)
	if *ckFile != "" {
		cks, err := integrity.ReadCheckpointFile(*ckFile)
		if err != nil {
			return err
		}
		src = fileSource{KafkaSource: src.(*integrity.KafkaSource), cks: cks}
	}
	rep, err := integrity.Verify(ctx, src, opts)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.WriteText(stdout)
	}
	if !rep.OK() {
		return errVerifyFailed
	}
	return nil
}

// errVerifyFailed is returned when the check found problems: exit status 1.
var errVerifyFailed = errors.New("integrity check failed")

// parseWhen reads RFC 3339 or a duration before now; "" is the zero time.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor a duration", s)
	}
	return now.Add(-d), nil
}
