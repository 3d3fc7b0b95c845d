package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/structs"
	"github.com/knadh/koanf/v2"
)

// EnvPrefix prefixes every environment override: TRAILWATCH_KAFKA__BROKERS
// sets kafka.brokers ("__" nests, a single "_" stays part of the key).
const EnvPrefix = "TRAILWATCH_"

// Sources says where configuration comes from, in increasing precedence.
type Sources struct {
	// File is a YAML file; empty means none.
	File string
	// Environ lists KEY=VALUE pairs; nil means os.Environ.
	Environ []string
	// Overrides are dotted keys set last (from flags).
	Overrides map[string]any
}

// Load fills dst (a pointer to a struct with koanf tags) from defaults, then
// the YAML file, then TRAILWATCH_ variables, then overrides. Unknown keys are
// an error naming them; nothing is half-applied: on error dst is untouched.
func Load(dst, defaults any, src Sources) error {
	k := koanf.New(".")
	if err := k.Load(structs.Provider(defaults, "koanf"), nil); err != nil {
		return fmt.Errorf("config defaults: %w", err)
	}
	if src.File != "" {
		if _, err := os.Stat(src.File); err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		if err := k.Load(file.Provider(src.File), yaml.Parser()); err != nil {
			return fmt.Errorf("config file %s: %w", src.File, err)
		}
	}
	environ := src.Environ
	if environ == nil {
		environ = os.Environ()
	}
	envp := env.Provider(".", env.Opt{
		Prefix:      EnvPrefix,
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(key, v string) (string, any) {
			key = strings.ToLower(strings.TrimPrefix(key, EnvPrefix))
			return strings.ReplaceAll(key, "__", "."), v
		},
	})
	if err := k.Load(envp, nil); err != nil {
		return fmt.Errorf("config environment: %w", err)
	}
	for key, v := range src.Overrides {
		if err := k.Set(key, v); err != nil {
			return fmt.Errorf("config flag %s: %w", key, err)
		}
	}
	out := reflect.New(reflect.TypeOf(dst).Elem())
	err := k.UnmarshalWithConf("", out.Interface(), koanf.UnmarshalConf{
		Tag: "koanf",
		DecoderConfig: &mapstructure.DecoderConfig{
			DecodeHook: mapstructure.ComposeDecodeHookFunc(
				mapstructure.StringToTimeDurationHookFunc(),
				mapstructure.StringToSliceHookFunc(","),
				mapstructure.TextUnmarshallerHookFunc(),
			),
			ErrorUnused:      true,
			WeaklyTypedInput: true,
			TagName:          "koanf",
		},
	})
	if err != nil {
		return fmt.Errorf("config: %w", tidy(err))
	}
	reflect.ValueOf(dst).Elem().Set(out.Elem())
	return nil
}

var invalidKeys = regexp.MustCompile(`'([^']*)' has invalid keys: (.*)$`)

// tidy rewords mapstructure's messages so each names the dotted key.
func tidy(err error) error {
	var errs []error
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "decoding failed due to the following error") {
			continue
		}
		if m := invalidKeys.FindStringSubmatch(line); m != nil {
			for _, k := range strings.Split(m[2], ", ") {
				if m[1] != "" {
					k = m[1] + "." + k
				}
				errs = append(errs, fmt.Errorf("%s: unknown key", k))
			}
			continue
		}
		errs = append(errs, errors.New(line))
	}
	return errors.Join(errs...)
}

// Prefix names a component's validation errors by its section: each line of
// err gets "section." in front.
func Prefix(section string, err error) error {
	if err == nil {
		return nil
	}
	var out []error
	for _, line := range strings.Split(err.Error(), "\n") {
		if line != "" {
			out = append(out, fmt.Errorf("%s.%s", section, line))
		}
	}
	return errors.Join(out...)
}
