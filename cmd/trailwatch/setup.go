package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/trailwatch/trailwatch/outputs/elasticsearch"
	"github.com/trailwatch/trailwatch/outputs/kibana"
)

// cmdSetup installs what the search side needs: `setup elasticsearch`
// (lifecycle policies, templates, indices or data streams) and `setup
// kibana` (data views, searches, visualizations, dashboards).
func cmdSetup(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	return dispatch("setup", "<elasticsearch|kibana> [flags]", []subcommand{
		{"elasticsearch", "install lifecycle policies, index templates and indices or data streams (idempotent)", func(args []string) error { return setupElasticsearch(ctx, args, stdout, stderr) }},
		{"kibana", "import the data views, saved searches and dashboards into Kibana", func(args []string) error { return setupKibana(ctx, args, stdout, stderr) }},
	}, args, stdout, stderr)
}

func setupElasticsearch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("setup elasticsearch [-c FILE] [--dry-run]",
		"Install, under index.elasticsearch: the lifecycle policies (ILM on Elasticsearch, ISM on\n"+
			"OpenSearch), a component and an index template per kind with the ECS mapping, and the\n"+
			"indices (mode single) or data streams (mode data_stream). Idempotent: a second run\n"+
			"reports every resource unchanged. --dry-run prints the requests without sending them.\n"+
			"See docs/outputs.md.", stdout, stderr)
	cfgPath := fs.StringP("config", "c", "", "YAML configuration file")
	dryRun := fs.Bool("dry-run", false, "print the requests instead of sending them")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, nil, nil)
	if err != nil {
		return err
	}
	ix, err := elasticsearch.New(cfg.Index.Elasticsearch, newLogger(cfg.Log))
	if err != nil {
		return fmt.Errorf("index.elasticsearch: %w", err)
	}
	defer func() { _ = ix.Close(context.WithoutCancel(ctx)) }()
	if *dryRun {
		for _, r := range ix.SetupRequests() {
			fmt.Fprintf(stdout, "%s %s\n", r.Method, r.Path)
			if len(r.Body) > 0 {
				fmt.Fprintf(stdout, "%s\n", r.Body)
			}
		}
		return nil
	}
	rep, err := ix.Setup(ctx)
	fmt.Fprint(stdout, rep.String())
	if err != nil {
		if errors.Is(err, elasticsearch.ErrLifecycleUnavailable) {
			return fmt.Errorf("%w; install the index-management plugin or set index.elasticsearch.*_retention_days to 0 with mode single or daily", err)
		}
		return err
	}
	if !rep.Changed() {
		fmt.Fprintln(stdout, "everything was already up to date")
	}
	return nil
}

func setupKibana(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("setup kibana [-c FILE] [--url URL] [--space S] [--dry-run]",
		"Import trailwatch's Kibana saved objects (data views trailwatch-events* and\n"+
			"trailwatch-alerts*, saved searches, Lens visualizations, dashboards) through Kibana's\n"+
			"saved-objects import API, overwriting earlier versions. Needs Kibana 8.8 or later.\n"+
			"See docs/kibana.md.", stdout, stderr)
	cfgPath := fs.StringP("config", "c", "", "YAML configuration file")
	kurl := fs.String("url", "", "Kibana base URL (default: kibana.url)")
	space := fs.String("space", "", "Kibana space id (default: kibana.space, else the default space)")
	dryRun := fs.Bool("dry-run", false, "list the objects and the import URL without sending them")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	overrides := map[string]any{}
	if *kurl != "" {
		overrides["kibana.url"] = *kurl
	}
	if *space != "" {
		overrides["kibana.space"] = *space
	}
	cfg, err := loadConfig(*cfgPath, nil, overrides)
	if err != nil {
		return err
	}
	im, err := kibana.New(cfg.Kibana, newLogger(cfg.Log))
	if err != nil {
		return err
	}
	if *dryRun {
		objs, err := kibana.Objects()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "POST %s\n", im.ImportURL())
		for _, o := range objs {
			fmt.Fprintf(stdout, "  %-14s %s\n", o.Type, o.ID)
		}
		return nil
	}
	res, err := im.Import(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imported %d objects into %s\n", res.SuccessCount, im.ImportURL())
	return nil
}
