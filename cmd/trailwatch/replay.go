package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/enrich"
	"github.com/trailwatch/trailwatch/internal/gctune"
	"github.com/trailwatch/trailwatch/internal/kafka"
	"github.com/trailwatch/trailwatch/internal/replay"
	"github.com/trailwatch/trailwatch/normalize/schema"
	"github.com/trailwatch/trailwatch/outputs/elasticsearch"
	"github.com/trailwatch/trailwatch/outputs/slack"
)

func cmdReplay(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("replay --from TIME --to TIME [--topic raw|events] [--rules DIR…] [--filter EXPR]",
		"Re-read a time range of a retained topic, re-normalize (raw) or decode (events),\n"+
			"enrich and run the rules in event time, as a named replay run: alerts carry\n"+
			"trailwatch.run_id and go to the run's own topic (<alerts>.replay.<run>) and, when\n"+
			"the index is Elasticsearch, its own index (<alerts index>-replay-<run>); never to\n"+
			"the live ones, and never paged unless --notify. The same range gives the same\n"+
			"alerts every time. TIME is RFC 3339 (2026-11-20T12:00:00Z), a date (2026-11-20,\n"+
			"UTC), \"now\", or a duration ago (36h). See docs/replay.md.", stdout, stderr)
	cfgPath := fs.StringP("config", "c", "", "YAML configuration file (brokers, topics, sources, enrichment, index, Slack)")
	brokers := fs.String("brokers", "", "comma-separated Kafka brokers (default: the config's)")
	fromS := fs.String("from", "", "start of the range, inclusive (required)")
	toS := fs.String("to", "now", "end of the range, exclusive")
	topic := fs.String("topic", replay.InputRaw, "what to re-read: raw (re-normalize; range by collection time) or events (range by event time)")
	rules := fs.StringSlice("rules", nil, "rule directories or files (default: the config's detect.rules)")
	filter := fs.String("filter", "", `only events this expr condition holds for reach the rules, e.g. 'source.ip == "203.0.113.7"'`)
	noEnrich := fs.Bool("no-enrich", false, "skip enrichment (faster; rules on enriched fields then see them empty)")
	runID := fs.String("run-id", "", "name of the run (default replay-YYYYmmdd-HHMMSS-xxxx)")
	output := fs.String("output", "", `"-" also prints the alerts as NDJSON on stdout`)
	alertsTopic := fs.String("alerts-topic", "", "topic for the run's alerts (default <alerts topic>.replay.<run>); \"none\" writes none")
	index := fs.String("index", "", "index for the run's alerts (default <alerts index>-replay-<run> when index.type is elasticsearch); \"none\" writes none")
	notify := fs.Bool("notify", false, "page the run's alerts through the configured Slack")
	readPast := fs.Duration("read-past", 0, "for --topic events: read this far past --to for out-of-order events (default detect.allowed_lateness)")
	quiet := fs.BoolP("quiet", "q", false, "no progress output")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	now := time.Now()
	if *fromS == "" {
		fmt.Fprintln(stderr, "trailwatch replay: --from: required")
		return errUsage
	}
	from, err := parseReplayTime(*fromS, now)
	if err != nil {
		fmt.Fprintf(stderr, "trailwatch replay: --from: %v\n", err)
		return errUsage
	}
	to, err := parseReplayTime(*toS, now)
	if err != nil {
		fmt.Fprintf(stderr, "trailwatch replay: --to: %v\n", err)
		return errUsage
	}
	overrides := map[string]any{}
	if *brokers != "" {
		overrides["kafka.brokers"] = *brokers
	}
	cfg, err := loadConfig(*cfgPath, nil, overrides)
	if err != nil {
		return err
	}
	// Replay passes a whole range through normalize and detect: the GC
	// floor is worth as much here as in `run` (docs/benchmarks.md).
	defer gctune.Start(uint64(cfg.GCHeapFloorMB)<<20, 100).Stop()
	log := newLogger(LogConfig{Level: "warn", Format: cfg.Log.Format})
	if len(*rules) == 0 {
		*rules = cfg.Detect.Rules
	}
	rs, err := detect.LoadDir(*rules...)
	if err != nil {
		return err
	}
	if *filter != "" {
		if _, err := replay.CompileFilter(*filter); err != nil {
			return err
		}
	}
	if *runID == "" {
		*runID = replay.NewRunID(now)
	}
	rc, cleanup, err := replayBase(cfg, *topic, log)
	if err != nil {
		return err
	}
	defer cleanup()
	rc.From, rc.To, rc.Filter, rc.Rules, rc.RunID, rc.ReadPast = from, to, *filter, rs, *runID, *readPast
	if !*noEnrich {
		en, err := enrich.New(cfg.Enrich, log)
		if err != nil {
			return fmt.Errorf("enrich: %w", err)
		}
		defer en.Close(context.Background())
		rc.Enricher = en
	}
	tty := isTerminal(stderr)
	var pp *replay.ProgressPrinter
	if !*quiet {
		pp = replay.NewProgressPrinter(stderr, tty, 5*time.Second)
		rc.Progress = pp.Update
	}
	r, err := replay.New(rc, log)
	if err != nil {
		return err
	}

	var sinks []replay.Sink
	var dests []string
	if *output == "-" {
		sinks = append(sinks, replay.NDJSONSink(stdout))
	} else if *output != "" {
		fmt.Fprintln(stderr, `trailwatch replay: --output takes only "-" (stdout)`)
		return errUsage
	}
	if *alertsTopic != "none" {
		name := *alertsTopic
		if name == "" {
			name = replay.TopicName(cfg.Kafka.Topics.Alerts, *runID)
		}
		cl, err := kgo.NewClient(rc.Kafka...)
		if err != nil {
			return fmt.Errorf("kafka: %w", err)
		}
		defer cl.Close()
		if err := kafka.EnsureTopics(ctx, cl, cfg.Kafka.Partitions, cfg.Kafka.ReplicationFactor, name); err != nil {
			return fmt.Errorf("kafka: %w", err)
		}
		sinks = append(sinks, replay.TopicSink(cl, name))
		dests = append(dests, "topic "+name)
	}
	if *index != "none" && (cfg.Index.Type == "elasticsearch" || *index != "") {
		if cfg.Index.Type != "elasticsearch" {
			return errors.New("--index needs index.type elasticsearch in the configuration")
		}
		name := *index
		if name == "" {
			name = replay.IndexName(cfg.Index.Elasticsearch.AlertsIndex, *runID)
		}
		ix, err := replayIndexer(ctx, cfg.Index.Elasticsearch, name, log)
		if err != nil {
			return err
		}
		defer ix.Close(context.Background())
		sinks = append(sinks, replay.IndexSink(ix))
		dests = append(dests, "index "+name)
	}
	if *notify {
		if !slackEnabled(cfg.Notify.Slack) {
			return errors.New("--notify needs notify.slack in the configuration")
		}
		s, err := slack.New(cfg.Notify.Slack, log)
		if err != nil {
			return fmt.Errorf("notify.slack: %w", err)
		}
		defer s.Close(context.Background())
		sinks = append(sinks, replay.NotifySink(s))
		dests = append(dests, "slack")
	}
	res, err := r.Run(ctx, replay.Multi(sinks...))
	if pp != nil {
		pp.Done()
	}
	fmt.Fprintln(stderr, res.Summary())
	if len(dests) > 0 {
		fmt.Fprintf(stderr, "replay %s: alerts written to %s\n", *runID, strings.Join(dests, ", "))
	}
	return err
}

// replayBase is the part of a replay's configuration that comes from the
// pipeline's: the connection (starting the embedded broker on the data
// dir when no brokers are configured), the topic, the sources and the
// detector settings. cleanup stops what it started.
func replayBase(cfg Config, input string, log *slog.Logger) (replay.Config, func(), error) {
	rc := replay.Config{Input: input, Sources: cfg.Normalize.Sources, DedupIDs: cfg.Detect.DedupIDs,
		Detect: detect.Config{AllowedLateness: cfg.Detect.AllowedLateness,
			// One detector holds what every live partition's holds.
			MaxGroups: cfg.Detect.MaxGroups * int(max(cfg.Kafka.Partitions, 1))}}
	switch input {
	case replay.InputRaw:
		rc.Topic = cfg.Kafka.Topics.Raw
	case replay.InputEvents:
		rc.Topic = cfg.Kafka.Topics.Events
	default:
		return rc, nil, fmt.Errorf("--topic: %q is not raw or events", input)
	}
	cleanup := func() {}
	kc := cfg.Kafka
	if len(kc.Brokers) == 0 {
		emb, err := kafka.StartEmbedded(filepath.Join(cfg.DataDir, "kafka"), 0, kc.Partitions)
		if err != nil {
			return rc, nil, fmt.Errorf("embedded broker under %s (is `trailwatch run` using it? pass --brokers): %w", cfg.DataDir, err)
		}
		kc.Brokers = emb.Addrs()
		cleanup = emb.Close
		log.Debug("embedded broker started", "dir", cfg.DataDir)
	}
	opts, err := kc.Opts()
	if err != nil {
		cleanup()
		return rc, nil, err
	}
	rc.Kafka = opts
	return rc, cleanup, nil
}

// replayIndexer returns an indexer writing alerts into the concrete index
// name, created with the alerts mapping of the configured index (the
// pipeline's templates are installed first if missing, as `run` does).
// The run's index gets no template of its own: a template per run would
// pile up, and one overlapping the live daily template would be refused.
func replayIndexer(ctx context.Context, live elasticsearch.Config, name string, log *slog.Logger) (*elasticsearch.Indexer, error) {
	liveIx, err := elasticsearch.New(live, log)
	if err != nil {
		return nil, fmt.Errorf("index.elasticsearch: %w", err)
	}
	defer liveIx.Close(context.Background())
	if err := liveIx.EnsureIndices(ctx); err != nil {
		return nil, fmt.Errorf("index.elasticsearch: %w", err)
	}
	alerts := live.AlertsIndex
	if alerts == "" {
		alerts = elasticsearch.DefaultConfig().AlertsIndex
	}
	if err := createLike(ctx, liveIx, alerts+"-mappings", name); err != nil {
		return nil, fmt.Errorf("index %s: %w", name, err)
	}
	rc := live
	rc.Mode, rc.AlertsIndex = elasticsearch.ModeSingle, name
	rc.EventsRetentionDays, rc.AlertsRetentionDays = 0, 0
	ix, err := elasticsearch.New(rc, log)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", name, err)
	}
	return ix, nil
}

// parseReplayTime reads a replay time: RFC 3339, a UTC date or minute, "now", or
// a duration meaning that long before now.
func parseReplayTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "now" {
		return now, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not RFC 3339, a date, now, or a duration ago (36h)", s)
}

// retroHunter returns the callback the rule reload calls with the rule
// sets before and after: when detect.retro_hunt is enabled, the new or
// changed rules run over the look-back of the events topic as a replay
// run, their alerts go to the run's topic (and the configured notifiers
// with notify: true), and the report is logged. It runs in the caller's
// goroutine; a failure is logged, never fatal to the pipeline. base is
// the pipeline's connection; enrichment uses a fresh enricher so the live
// one's state is not touched.
func retroHunter(cfg Config, base []kgo.Opt, prod *kgo.Client, log *slog.Logger, notifiers []replay.Sink) func(ctx context.Context, prev, next *detect.RuleSet) {
	rh := cfg.Detect.RetroHunt
	return func(ctx context.Context, prev, next *detect.RuleSet) {
		if !rh.Enabled {
			return
		}
		rc := replay.Config{Kafka: base, Topic: cfg.Kafka.Topics.Events, Input: replay.InputEvents, DedupIDs: cfg.Detect.DedupIDs,
			Detect: detect.Config{AllowedLateness: cfg.Detect.AllowedLateness, MaxGroups: cfg.Detect.MaxGroups * int(max(cfg.Kafka.Partitions, 1))}}
		en, err := enrich.New(cfg.Enrich, log)
		if err != nil {
			log.Error("retro-hunt not run", "err", err)
			return
		}
		defer en.Close(context.Background())
		rc.Enricher = en
		rc.RunID = replay.NewRunID(time.Now())
		rc.RunID = "retro" + strings.TrimPrefix(rc.RunID, "replay")
		topic := replay.TopicName(cfg.Kafka.Topics.Alerts, rc.RunID)
		sinks := []replay.Sink{func(ctx context.Context, alerts []schema.Alert) error {
			if err := kafka.EnsureTopics(ctx, prod, cfg.Kafka.Partitions, cfg.Kafka.ReplicationFactor, topic); err != nil {
				return err
			}
			return replay.TopicSink(prod, topic)(ctx, alerts)
		}}
		if rh.Notify {
			sinks = append(sinks, notifiers...)
		}
		rep, err := replay.RetroHunt(ctx, prev, next, rh, rc, replay.Multi(sinks...), log)
		if err != nil {
			log.Error("retro-hunt failed", "changed", strings.Join(rep.Changed, ","), "err", err)
			return
		}
		if len(rep.Changed) > 0 {
			log.Info(rep.String(), "run_id", rep.Result.RunID, "topic", topic, "alerts", rep.Result.Alerts)
		}
	}
}

// createLike creates index with the mappings of the component template
// named component; an index that exists already is kept (a run resumed
// under the same id).
func createLike(ctx context.Context, ix *elasticsearch.Indexer, component, index string) error {
	cl := ix.Client()
	res, err := cl.Cluster.GetComponentTemplate(cl.Cluster.GetComponentTemplate.WithName(component), cl.Cluster.GetComponentTemplate.WithContext(ctx))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.IsError() {
		return fmt.Errorf("read component template %s: %s", component, res.Status())
	}
	var got struct {
		ComponentTemplates []struct {
			ComponentTemplate struct {
				Template struct {
					Mappings json.RawMessage `json:"mappings"`
				} `json:"template"`
			} `json:"component_template"`
		} `json:"component_templates"`
	}
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil || len(got.ComponentTemplates) == 0 {
		return fmt.Errorf("component template %s: no mappings", component)
	}
	body, _ := json.Marshal(map[string]any{"mappings": got.ComponentTemplates[0].ComponentTemplate.Template.Mappings})
	cr, err := cl.Indices.Create(index, cl.Indices.Create.WithBody(bytes.NewReader(body)), cl.Indices.Create.WithContext(ctx))
	if err != nil {
		return err
	}
	defer cr.Body.Close()
	if cr.IsError() {
		b, _ := io.ReadAll(cr.Body)
		if strings.Contains(string(b), "resource_already_exists_exception") {
			return nil
		}
		return fmt.Errorf("create: %s: %s", cr.Status(), b)
	}
	return nil
}
