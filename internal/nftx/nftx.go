// Package nftx is the one place gingham writes whole nftables tables: each
// owned table (felix/nat's "gingham", ipip's "gingham-ipip") is replaced in
// a single batch — removed if present, then rebuilt — so the kernel never
// sees it half-written, and tables gingham does not own are never touched.
package nftx

import (
	"fmt"
	"slices"

	"github.com/google/nftables"
)

// Open connects to nftables in the namespace nsFd (< 0: the caller's).
func Open(nsFd int) (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if nsFd >= 0 {
		opts = append(opts, nftables.WithNetNSFd(nsFd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("open nftables: %w", err)
	}
	return c, nil
}

// Replace atomically replaces the IPv4 table name with what build adds to
// it; a nil build removes the table (if present) and leaves nothing.
func Replace(nsFd int, name string, build func(c *nftables.Conn, t *nftables.Table) error) error {
	c, err := Open(nsFd)
	if err != nil {
		return err
	}
	t := &nftables.Table{Name: name, Family: nftables.TableFamilyIPv4}
	// add+delete is the idempotent "remove if present" inside one batch.
	c.AddTable(t)
	c.DelTable(t)
	if build != nil {
		t = c.AddTable(&nftables.Table{Name: name, Family: nftables.TableFamilyIPv4})
		if err := build(c, t); err != nil {
			return fmt.Errorf("write nftables table %s: %w", name, err)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("write nftables table %s: %w", name, err)
	}
	return nil
}

// Find returns the IPv4 table name, or nil when it does not exist.
func Find(c *nftables.Conn, name string) (*nftables.Table, error) {
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("list nftables tables: %w", err)
	}
	if i := slices.IndexFunc(ts, func(t *nftables.Table) bool { return t.Name == name }); i >= 0 {
		return ts[i], nil
	}
	return nil, nil
}
