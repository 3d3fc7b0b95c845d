package iplist

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// maxLineErrors bounds how many bad lines one error reports.
const maxLineErrors = 5

// parseList reads a list: one IP address or CIDR per line, optionally
// followed by ",label" (CSV cidr,label); "#" starts a comment; blank lines
// are skipped, and so is a first line that is a CSV header. Any other line
// that does not parse makes the whole file an error naming name:line, so a
// truncated or garbled download never silently shrinks a list.
func parseList(name string, r io.Reader) ([]entry, error) {
	var out []entry
	var errs []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	n, seen := 0, false
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		first := !seen
		seen = true
		addr, label, _ := strings.Cut(line, ",")
		addr = strings.Trim(strings.TrimSpace(addr), `"`)
		label = strings.Trim(strings.TrimSpace(label), `"`)
		p, err := parsePrefix(addr)
		if err != nil {
			if first && strings.Contains(line, ",") {
				continue // a header such as "cidr,label"
			}
			if len(errs) < maxLineErrors {
				errs = append(errs, fmt.Errorf("%s:%d: %w", name, n, err))
			}
			continue
		}
		out = append(out, entry{prefix: p, label: label})
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	return out, errors.Join(errs...)
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.IndexByte(s, '/') >= 0 {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}
