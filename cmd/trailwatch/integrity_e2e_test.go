package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/internal/integrity"
)

// TestEndToEndIntegrityInNormalize runs collect and normalize with
// integrity.mode normalize on the real broker: the normalize stage builds
// the chain from its own read of the raw topic (no second consumer group),
// and `trailwatch verify --strict` then finds every line covered by a
// signed checkpoint and nothing wrong. Listing the integrity stage as well
// is refused: two builders would fork the chain.
func TestEndToEndIntegrityInNormalize(t *testing.T) {
	run, cfgPath, logPath, brokers, _, _ := e2eSetup(t)
	keyFile, pubFile, err := integrity.GenerateKey(filepath.Join(t.TempDir(), "integrity"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	keyed := "keyed_state: " + run + ".state.keyed}"
	if !bytes.Contains(cfg, []byte(keyed)) {
		t.Fatalf("e2e config no longer lists %q", keyed)
	}
	cfg = bytes.Replace(cfg, []byte(keyed), []byte(keyed[:len(keyed)-1]+", integrity: "+run+".integrity}"), 1)
	cfg = fmt.Appendf(cfg, "integrity: {mode: normalize, signing_key_file: %s, public_key_file: %s, checkpoint_interval: 1s}\n", keyFile, pubFile)
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := cmdRun(t.Context(), []string{"-c", cfgPath, "--stages", "normalize,integrity"}, nil, &out, &errb); err == nil ||
		!strings.Contains(err.Error(), "remove integrity from stages") {
		t.Fatalf("run with the integrity stage in mode normalize: err %v, want a refusal naming the fix", err)
	}
	const lines = 300
	appendLines(t, logPath, e2eLines(0, lines))
	p := startChild(t, "run -c "+cfgPath+" --stages collect,normalize")
	waitCaughtUp(t, brokers, run+"-normalize", run+".raw")
	var rep integrity.Report
	waitFor(t, "verify --strict to cover every raw record", 60*time.Second, func() bool {
		p.alive(t)
		var out, errb bytes.Buffer
		err := cmdVerify(t.Context(), []string{"-c", cfgPath, "--strict", "--json"}, nil, &out, &errb)
		rep = integrity.Report{}
		if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
			t.Fatalf("verify printed no JSON report (err %v): %s %s", err, out.String(), errb.String())
		}
		return err == nil && rep.OK() && rep.Records == lines
	})
	if rep.Checkpoints == 0 || len(rep.Uncovered) != 0 {
		t.Errorf("verify: %d checkpoints, uncovered %+v", rep.Checkpoints, rep.Uncovered)
	}
	log := p.stderr.String()
	if !strings.Contains(log, "integrity chain built by the normalize stage") {
		t.Errorf("the process did not fold the chain into the normalize stage; log:\n%s", log)
	}
}
