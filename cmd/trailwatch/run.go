package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/enrich"
	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/ingest/redact"
	"github.com/trailwatch/trailwatch/internal/gctune"
	"github.com/trailwatch/trailwatch/internal/health"
	"github.com/trailwatch/trailwatch/internal/integrity"
	"github.com/trailwatch/trailwatch/internal/kafka"
	"github.com/trailwatch/trailwatch/internal/pipeline"
	"github.com/trailwatch/trailwatch/internal/replay"
	"github.com/trailwatch/trailwatch/internal/stages"
	"github.com/trailwatch/trailwatch/internal/telemetry"
	"github.com/trailwatch/trailwatch/normalize/schema"
	"github.com/trailwatch/trailwatch/outputs"
	"github.com/trailwatch/trailwatch/outputs/console"
	"github.com/trailwatch/trailwatch/outputs/elasticsearch"
	outfile "github.com/trailwatch/trailwatch/outputs/file"
	"github.com/trailwatch/trailwatch/outputs/kibana"
	"github.com/trailwatch/trailwatch/outputs/slack"
	"github.com/trailwatch/trailwatch/outputs/webhook"
)

// shutdownBudget bounds the flush of outputs at shutdown.
const shutdownBudget = 15 * time.Second

func cmdRun(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("run [-c FILE] [--stages LIST]",
		"Run the pipeline. With no flags and no config it runs the embedded default: an\n"+
			"in-process Kafka broker persisted under ./data, a file collector on the demo logs\n"+
			"in testdata/demo, the rules in rules/, alerts on the console and events and alerts\n"+
			"as NDJSON under ./data/output. Ctrl-C stops it cleanly.\n\n"+
			"Configuration: defaults < YAML file (-c) < TRAILWATCH_* environment < flags.\n"+
			"See docs/configuration.md.", stdout, stderr)
	cfgPath := fs.StringP("config", "c", "", "YAML configuration file")
	stagesFlag := fs.String("stages", "", "comma-separated stages to run: "+strings.Join(allStages, ","))
	dataDir := fs.String("data-dir", "", "data directory (default ./data)")
	brokers := fs.String("brokers", "", "comma-separated Kafka brokers (default: embedded broker)")
	listen := fs.String("http-listen", "", "telemetry listen address (default 127.0.0.1:9464; \"\" keeps the config's)")
	logLevel := fs.String("log-level", "", "log level: debug, info, warn, error")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to FILE (for go tool pprof)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	overrides := map[string]any{}
	setIf := func(key, v string) {
		if v != "" {
			overrides[key] = v
		}
	}
	setIf("stages", *stagesFlag)
	setIf("data_dir", *dataDir)
	setIf("kafka.brokers", *brokers)
	setIf("http.listen", *listen)
	setIf("log.level", *logLevel)
	cfg, err := loadConfig(*cfgPath, nil, overrides)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log)
	defer gctune.Start(uint64(cfg.GCHeapFloorMB)<<20, 100).Stop()
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	return runPipeline(ctx, cfg, log, stdout)
}

// startCPUProfile profiles the process into path until the returned stop
// is called (docs/benchmarks.md measures the pipeline with it).
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// app holds what runPipeline started, to stop it in order.
type app struct {
	cfg      Config
	log      *slog.Logger
	tel      *telemetry.Server
	embedded *kafka.Embedded
	base     []kgo.Opt
	prod     *kgo.Client
	writer   outputs.EventWriter
	notifier []stages.Notifier
	emit     ingest.Emit
	enricher *enrich.Enrichment
	book     *stages.RuleBook
	// background runs beside the stages and stops with them (health checks,
	// rule reloads).
	background []func(ctx context.Context)
}

// runPipeline starts the configured stages and blocks until ctx ends, then
// shuts down in order. Any error before the pipeline runs is returned as one
// line naming the problem.
func runPipeline(ctx context.Context, cfg Config, log *slog.Logger, alertsOut io.Writer) (err error) {
	a := &app{cfg: cfg, log: log}
	defer a.close()
	if err := checkDataDir(cfg.DataDir); err != nil {
		return err
	}
	a.tel = telemetry.New(cfg.HTTP, log)
	if err := a.tel.Start(); err != nil {
		return err
	}
	if err := a.connect(ctx); err != nil {
		return err
	}
	collectors, consumers, err := a.build(ctx, alertsOut)
	if err != nil {
		return err
	}

	// Collectors stop first so no new raw records are produced; the
	// consumer stages stop next, each abandoning an unfinished batch
	// uncommitted (it is replayed on restart); outputs flush after that;
	// the Kafka clients and the embedded broker close last (a.close).
	collectCtx, stopCollect := context.WithCancel(context.Background())
	stageCtx, stopStages := context.WithCancel(context.Background())
	defer stopCollect()
	defer stopStages()
	var cwg, swg sync.WaitGroup
	errc := make(chan error, len(collectors)+len(consumers))
	for _, c := range collectors {
		cwg.Go(func() {
			if err := c.run(collectCtx, a.emit); err != nil {
				errc <- fmt.Errorf("collector %s: %w", c.name, err)
			}
		})
	}
	for _, r := range consumers {
		swg.Go(func() {
			if err := r.Run(stageCtx); err != nil {
				errc <- err
			}
		})
	}
	for _, bg := range a.background {
		swg.Go(func() { bg(stageCtx) })
	}
	a.tel.SetReady(true)
	log.Info("trailwatch running", "stages", strings.Join(cfg.Stages, ","), "brokers", strings.Join(a.brokers(), ","), "data_dir", cfg.DataDir)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		log.Error("stage failed; shutting down", "err", runErr)
	}
	a.tel.SetReady(false)
	log.Info("shutting down")
	stopCollect()
	cwg.Wait()
	stopStages()
	swg.Wait()
	log.Info("stopped")
	return runErr
}

// connect starts the embedded broker if no brokers are configured, checks
// the brokers answer and creates the topics.
// brokerDown reports an error of a broker that is not there yet (refused,
// unreachable, timed out): worth waiting for. A broker that answers and
// refuses (SASL, TLS, authorization) is a configuration error, returned at
// once.
func brokerDown(err error) bool {
	var ne net.Error
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) ||
		errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// waitBrokers pings the brokers until they answer, retrying with a warning
// for up to kafka.startup_wait while they are down (brokerDown): a process
// (re)started while the broker restarts waits for it, as running stages
// do, instead of exiting.
func (a *app) waitBrokers(ctx context.Context) error {
	kc := a.cfg.Kafka
	giveUp := time.Now().Add(kc.StartupWait)
	bo := pipeline.Backoff{Min: time.Second, Max: 10 * time.Second}
	for {
		pingCtx, cancel := context.WithTimeout(ctx, kc.DialTimeout+5*time.Second)
		err := kafka.Ping(pingCtx, a.prod)
		cancel()
		if err == nil {
			return nil
		}
		left := time.Until(giveUp)
		if ctx.Err() != nil || left <= 0 || !brokerDown(err) {
			return fmt.Errorf("kafka brokers %s unreachable: %w", strings.Join(kc.Brokers, ","), errors.Unwrap(err))
		}
		a.log.Warn("kafka brokers unreachable; retrying", "brokers", strings.Join(kc.Brokers, ","), "err", errors.Unwrap(err), "gives_up_in", left.Round(time.Second))
		if bo.Wait(ctx) != nil {
			return fmt.Errorf("kafka brokers %s unreachable: %w", strings.Join(kc.Brokers, ","), errors.Unwrap(err))
		}
	}
}

func (a *app) connect(ctx context.Context) error {
	kc := a.cfg.Kafka
	if len(kc.Brokers) == 0 {
		emb, err := kafka.StartEmbedded(filepath.Join(a.cfg.DataDir, "kafka"), 0, kc.Partitions)
		if err != nil {
			return err
		}
		a.embedded = emb
		kc.Brokers = emb.Addrs()
		a.cfg.Kafka.Brokers = kc.Brokers
	}
	base, err := kc.Opts()
	if err != nil {
		return err
	}
	a.base = base
	prodOpts := append([]kgo.Opt{}, base...)
	prodOpts = append(prodOpts,
		// A bounded buffer: produce blocks when full rather than dropping.
		kgo.MaxBufferedRecords(100_000),
		// ProduceSync unlingers what it produced, so this only delays
		// asynchronous produces.
		kgo.ProducerLinger(5*time.Millisecond),
		// Changelog records go to the partition of the state they hold.
		kgo.RecordPartitioner(kafka.Partitioner(kc.Topics.State, kc.Topics.KeyedState)),
	)
	a.prod, err = kgo.NewClient(prodOpts...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	if err := a.waitBrokers(ctx); err != nil {
		return err
	}
	pingCtx, cancel := context.WithTimeout(ctx, kc.DialTimeout+5*time.Second)
	defer cancel()
	t := kc.Topics
	if err := kafka.EnsureTopics(pingCtx, a.prod, kc.Partitions, kc.ReplicationFactor, t.AllTopics()...); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	for _, name := range t.CompactedTopics() {
		if err := kafka.EnsureCompactedTopic(pingCtx, a.prod, kc.Partitions, kc.ReplicationFactor, name); err != nil {
			return fmt.Errorf("kafka: %w", err)
		}
	}
	return nil
}

func (a *app) brokers() []string { return a.cfg.Kafka.Brokers }

func (a *app) group(stage string) string { return a.cfg.Kafka.GroupPrefix + "-" + stage }

// build constructs the configured stages without starting them.
func (a *app) build(ctx context.Context, alertsOut io.Writer) ([]collector, []*pipeline.Runner, error) {
	cfg, reg, t := a.cfg, a.tel.Registry(), a.cfg.Kafka.Topics
	var cols []collector
	var runs []*pipeline.Runner
	newRunner := func(name string, topics []string, h pipeline.Handler) error {
		st := pipeline.Stage{
			Name: name, Group: a.group(name), Topics: topics, Handler: h,
			Metrics: pipeline.NewStageMetrics(reg, name), Logger: a.log,
			GroupOpts: a.cfg.Kafka.GroupOpts(),
		}
		if name == stageIndex {
			// The sink idles while a batch is read and encoded, unless the
			// next batch is on its way (docs/benchmarks.md).
			st.InFlight = cfg.Index.BatchesInFlight
		}
		r, err := pipeline.NewRunner(st, a.base, a.prod)
		if err != nil {
			return err
		}
		runs = append(runs, r)
		return nil
	}
	if cfg.runs(stageCollect) {
		out := prometheus.NewCounter(prometheus.CounterOpts{Name: "trailwatch_collect_records_out_total", Help: "Raw records acknowledged by Kafka."})
		reg.MustRegister(out)
		red, err := newRedactor(cfg.Collect.Redact, cfg.DataDir)
		if err != nil {
			return nil, nil, err
		}
		redacted := prometheus.NewCounter(prometheus.CounterOpts{Name: "trailwatch_collect_secrets_redacted_total", Help: "Secrets replaced by fingerprints before Kafka."})
		reg.MustRegister(redacted)
		// Every collector's records pass the redactor: no secret reaches Kafka.
		a.emit = redact.Wrap(stages.CollectEmit(a.prod, t.Raw, out), red, func(n int) { redacted.Add(float64(n)) })
		built, err := cfg.Collect.build(a.log)
		if err != nil {
			return nil, nil, err
		}
		cols = built
	}
	if cfg.runs(stageNormalize) {
		h := stages.NewNormalize(t.Events, t.DLQ, reg)
		h.Specs = cfg.Normalize.Sources
		if cfg.Integrity.Mode == integrity.ModeNormalize {
			// Normalize reads every raw record and hashes it anyway: the
			// chain reuses both (docs/integrity.md, "Where the chain is
			// built").
			chain, err := a.newIntegrity(ctx)
			if err != nil {
				return nil, nil, err
			}
			h.Chain = chain
			a.log.Info("integrity chain built by the normalize stage")
		}
		if err := newRunner(stageNormalize, []string{t.Raw}, h); err != nil {
			return nil, nil, err
		}
	}
	if cfg.runs(stageIntegrity) {
		h, err := a.newIntegrity(ctx)
		if err != nil {
			return nil, nil, err
		}
		if err := newRunner(stageIntegrity, []string{t.Raw}, h); err != nil {
			return nil, nil, err
		}
	}
	if cfg.runs(stageDetect) {
		watcher, rs, err := detect.NewRuleWatcher(cfg.Detect.Rules...)
		if err != nil {
			return nil, nil, fmt.Errorf("detect.rules: %w", err)
		}
		dc := detect.Config{AllowedLateness: cfg.Detect.AllowedLateness, MaxGroups: cfg.Detect.MaxGroups}
		a.book = stages.NewRuleBook(rs, dc)
		dm := stages.NewDetectMetrics(reg)
		h := stages.NewDetect(t.Enriched, t.Alerts, t.DLQ, a.book, dm, a.log)
		readState := func(ctx context.Context, topic string, p int32, fn func(*kgo.Record) error) error {
			return kafka.ReadPartition(ctx, a.base, topic, p, fn)
		}
		h.RepartitionTopic, h.DedupIDs = t.Repartition, cfg.Detect.DedupIDs
		h.StateTopic, h.ReadState = t.State, readState
		en, err := enrich.New(cfg.Enrich, a.log.With("stage", stageDetect))
		if err != nil {
			return nil, nil, fmt.Errorf("enrich: %w", err)
		}
		a.enricher, h.Enricher = en, en
		reg.MustRegister(stages.EnrichCollector(en))
		a.log.Info("rules loaded", "rules", rs.Len(), "dirs", strings.Join(cfg.Detect.Rules, ","))
		if un := unroutedRoutes(rs.Routes(), cfg.Notify); len(un) > 0 {
			a.log.Warn("rules name routes no notifier matches on; their alerts go to the default destinations", "routes", strings.Join(un, ","))
		}
		a.watchRules(watcher, reg)
		if err := newRunner(stageDetect, []string{t.Events}, h); err != nil {
			return nil, nil, err
		}
		if cfg.Detect.Health.Enabled {
			if err := a.startHealth(h, dm); err != nil {
				return nil, nil, err
			}
		}
		kh := stages.NewKeyedDetect(t.Alerts, t.DLQ, a.book, dm, a.log)
		kh.DedupIDs = cfg.Detect.DedupIDs
		kh.StateTopic, kh.ReadState = t.KeyedState, readState
		if err := newRunner(stageDetect+"-keyed", []string{t.Repartition}, kh); err != nil {
			return nil, nil, err
		}
	}
	if cfg.runs(stageIndex) && cfg.Index.Type != "none" {
		w, err := a.newWriter(ctx)
		if err != nil {
			return nil, nil, err
		}
		a.writer = w
		if err := newRunner(stageIndex, []string{t.Enriched, t.Alerts}, stages.NewIndex(t.Enriched, t.Alerts, t.DLQ, w, reg, a.log)); err != nil {
			return nil, nil, err
		}
	}
	if cfg.runs(stageNotify) {
		if cfg.Notify.Console {
			c, err := console.New(console.Config{Color: isTerminal(alertsOut)}, a.log, alertsOut)
			if err != nil {
				return nil, nil, fmt.Errorf("notify.console: %w", err)
			}
			a.notifier = append(a.notifier, stages.Notifier{Name: "console", AlertNotifier: c})
		}
		silences := silenceStore(cfg.DataDir)
		if slackEnabled(cfg.Notify.Slack) {
			opts := []slack.Option{slack.WithSilences(silences)}
			if base := cfg.Kibana.URL; base != "" {
				// Alerts link to a Discover view of their events.
				opts = append(opts, slack.WithEventsLink(func(al schema.Alert) string { return kibana.DiscoverURL(cfg.Kibana.Base(), al) }))
			}
			s, err := slack.New(cfg.Notify.Slack, a.log, opts...)
			if err != nil {
				return nil, nil, fmt.Errorf("notify.slack: %w", err)
			}
			a.notifier = append(a.notifier, stages.Notifier{Name: "slack", AlertNotifier: s})
			if err := s.StartInteractivity(); err != nil {
				return nil, nil, fmt.Errorf("notify.slack: %w", err)
			}
		}
		for _, wc := range cfg.Notify.Webhooks {
			w, err := webhook.New(wc, a.log)
			if err != nil {
				return nil, nil, fmt.Errorf("notify.webhooks: %w", err)
			}
			a.notifier = append(a.notifier, stages.Notifier{Name: "webhook-" + wc.Name, AlertNotifier: w})
		}
		if len(cfg.Notify.Response.Actions) > 0 {
			x, err := webhook.NewActions(cfg.Notify.Response, a.log)
			if err != nil {
				return nil, nil, fmt.Errorf("notify.response: %w", err)
			}
			// A silence stops paging, not remediation.
			a.notifier = append(a.notifier, stages.Notifier{Name: "actions", AlertNotifier: x, IgnoreSilences: true})
		}
		if len(a.notifier) > 0 {
			sent, state, err := stages.LoadNotified(ctx, a.base, t.Notified)
			if err != nil {
				return nil, nil, fmt.Errorf("notify: %w", err)
			}
			for _, n := range a.notifier {
				if g, ok := n.AlertNotifier.(outputs.Grouper); ok {
					g.Restore(state[n.Name])
				}
			}
			nh := stages.NewNotify(t.Notified, t.DLQ, a.notifier, sent, reg, a.log)
			nh.TTL, nh.Producer, nh.Silences = cfg.Notify.DedupTTL, a.prod, silences
			if err := newRunner(stageNotify, []string{t.Alerts}, nh); err != nil {
				return nil, nil, err
			}
			// Grouped pages (group_wait, group_interval) go out on this
			// ticker; it stops with the stages, before the producer closes.
			a.background = append(a.background, func(ctx context.Context) { nh.RunFlush(ctx, time.Second) })
		}
	}
	return cols, runs, nil
}

// watchRules reloads the rules when their files change or on SIGHUP. A
// reload swaps the whole set (detectors keep the state of unchanged rules);
// a set with any bad file is refused whole and the running one stays.
func (a *app) watchRules(w *detect.RuleWatcher, reg prometheus.Registerer) {
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trailwatch_detect_rule_reloads_total", Help: "Rule reloads, by result (ok or error)."}, []string{"result"})
	reg.MustRegister(reloads)
	a.background = append(a.background, func(ctx context.Context) {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		reload := make(chan struct{}, 1)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					select {
					case reload <- struct{}{}:
					default:
					}
				}
			}
		}()
		// Retro-hunts run one at a time beside the pipeline; a reload
		// while one runs queues at most one more (the latest sets).
		retro := retroHunter(a.cfg, a.base, a.prod, a.log.With("component", "retro-hunt"), a.notifySinks())
		type change struct{ prev, next *detect.RuleSet }
		retros := make(chan change, 1)
		var rwg sync.WaitGroup
		defer rwg.Wait()
		rwg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case c := <-retros:
					retro(ctx, c.prev, c.next)
				}
			}
		})
		w.Run(ctx, a.cfg.Detect.ReloadInterval, reload, func(set *detect.RuleSet) {
			prev := a.book.Set()
			a.book.Swap(set)
			reloads.WithLabelValues("ok").Inc()
			a.log.Info("rules reloaded", "rules", set.Len())
			if a.cfg.Detect.RetroHunt.Enabled {
				select {
				case retros <- change{prev, set}:
				default:
					a.log.Warn("retro-hunt still running; this reload's changes are not hunted back")
				}
			}
		}, func(err error) {
			reloads.WithLabelValues("error").Inc()
			a.log.Error("rules not reloaded: the running set stays", "err", err)
		})
	})
}

// notifySinks returns the process's notifiers as replay sinks, for
// retro-hunts configured to page.
func (a *app) notifySinks() []replay.Sink {
	var out []replay.Sink
	for _, n := range a.notifier {
		out = append(out, replay.NotifySink(n.AlertNotifier))
	}
	return out
}

// startHealth builds the monitor of the pipeline's own health, fed by the
// detect stage, and schedules its checks and lag polls beside the stages.
// Its alerts go to the alerts topic like any other.
func (a *app) startHealth(h *stages.Detect, dm *stages.DetectMetrics) error {
	mon, err := health.New(a.cfg.Detect.Health, a.log.With("component", "health"))
	if err != nil {
		return fmt.Errorf("detect.health: %w", err)
	}
	a.tel.Registry().MustRegister(mon.Collector())
	h.Health = mon
	t := a.cfg.Kafka.Topics
	emit := func(ctx context.Context, alerts []schema.Alert) error {
		recs := make([]*kgo.Record, 0, len(alerts))
		for i := range alerts {
			b, err := json.Marshal(&alerts[i])
			if err != nil {
				return err
			}
			recs = append(recs, &kgo.Record{Topic: t.Alerts, Key: []byte(alerts[i].Event.ID), Value: b, Timestamp: alerts[i].Timestamp})
		}
		return pipeline.Produce(ctx, a.prod, recs)
	}
	groups := []string{a.group(stageNormalize), a.group(stageDetect), a.group(stageDetect + "-keyed"), a.group(stageIndex), a.group(stageNotify)}
	a.background = append(a.background,
		func(ctx context.Context) { mon.Run(ctx, dm.RuleCounters, emit) },
		func(ctx context.Context) { mon.PollLag(ctx, kadm.NewClient(a.prod), groups) },
	)
	return nil
}

func (a *app) newWriter(ctx context.Context) (outputs.EventWriter, error) {
	switch a.cfg.Index.Type {
	case "elasticsearch":
		w, err := elasticsearch.New(a.cfg.Index.Elasticsearch, a.log)
		if err != nil {
			return nil, fmt.Errorf("index.elasticsearch: %w", err)
		}
		if err := ensureIndices(ctx, w, a.log, time.Second); err != nil {
			return nil, fmt.Errorf("index.elasticsearch: %w", err)
		}
		return w, nil
	default:
		w, err := outfile.New(a.cfg.Index.File, a.log)
		if err != nil {
			return nil, fmt.Errorf("index.file: %w", err)
		}
		return w, nil
	}
}

// maxSetupWait bounds the pause between two start-up attempts of
// ensureIndices.
const maxSetupWait = 30 * time.Second

// ensureIndices runs EnsureIndices until it succeeds, the node refuses it
// (a 4xx: the configuration's fault, returned at once) or ctx ends. A node
// that is down or restarting is waited for, with a warning per attempt and
// a pause from first doubling up to maxSetupWait: an index process started
// while Elasticsearch is away waits for it, as every stage waits for Kafka,
// instead of exiting.
func ensureIndices(ctx context.Context, w *elasticsearch.Indexer, log *slog.Logger, first time.Duration) error {
	bo := pipeline.Backoff{Min: first, Max: maxSetupWait}
	for {
		err := w.EnsureIndices(ctx)
		if err == nil || !elasticsearch.Retryable(err) || ctx.Err() != nil {
			return err
		}
		log.Warn("elasticsearch not reachable at start-up; retrying index setup", "err", err)
		if bo.Wait(ctx) != nil {
			return err
		}
	}
}

// close releases everything in reverse order of start.
func (a *app) close() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownBudget)
	defer cancel()
	if a.enricher != nil {
		if err := a.enricher.Close(ctx); err != nil {
			a.log.Error("closing enrichment", "err", err)
		}
	}
	if a.writer != nil {
		if err := a.writer.Close(ctx); err != nil {
			a.log.Error("closing index output", "err", err)
		}
	}
	for _, n := range a.notifier {
		if err := n.Close(ctx); err != nil {
			a.log.Error("closing notifier", "notifier", n.Name, "err", err)
		}
	}
	if a.prod != nil {
		if err := a.prod.Flush(ctx); err != nil {
			a.log.Error("flushing producer", "err", err)
		}
		a.prod.Close()
	}
	if a.embedded != nil {
		a.embedded.Close()
	}
	if a.tel != nil {
		_ = a.tel.Close(ctx)
	}
}

// checkDataDir creates the data dir and proves it is writable, so the
// failure is one clear line at start rather than a checkpoint error later.
func checkDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("data_dir %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("data_dir %s is not writable: %w", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
