package ipam

import (
	"encoding/binary"
	"hash/fnv"
	"iter"
	"net/netip"
	"strings"
)

// maxBlocksWalked caps how many blocks of one pool are considered (only huge
// IPv6 pools have more).
const maxBlocksWalked = 1 << 32

// BlockName is the object name of a block: the CIDR with '.', ':' and '/'
// replaced by '-' (10.0.0.64/26 -> 10-0-0-64-26).
func BlockName(block netip.Prefix) string {
	return strings.NewReplacer(".", "-", ":", "-", "/", "-").Replace(block.Masked().String())
}

// BlockOf returns the block of the given size that contains addr.
func BlockOf(addr netip.Addr, blockSize int) netip.Prefix {
	p, _ := addr.Prefix(blockSize)
	return p
}

// BlockSizeOf returns the number of addresses in a block (at most 1<<16;
// pools validated by api/model have blocks of at most 4096 addresses).
func BlockSizeOf(block netip.Prefix) int {
	return 1 << (block.Addr().BitLen() - block.Bits())
}

// NumBlocks returns how many blocks of blockSize the pool holds (capped at
// 1<<32).
func NumBlocks(pool netip.Prefix, blockSize int) uint64 {
	n := blockSize - pool.Bits()
	if n < 0 {
		return 0
	}
	if n >= 32 {
		return maxBlocksWalked
	}
	return 1 << n
}

// BlockAt returns the i-th block of the pool (i < NumBlocks).
func BlockAt(pool netip.Prefix, blockSize int, i uint64) netip.Prefix {
	hostBits := pool.Addr().BitLen() - blockSize
	return netip.PrefixFrom(addOffset(pool.Masked().Addr(), i<<hostBits), blockSize)
}

// AddrAt returns the address with the given ordinal in the block.
func AddrAt(block netip.Prefix, ordinal int) netip.Addr {
	return addOffset(block.Masked().Addr(), uint64(ordinal))
}

// Ordinal returns the position of addr in the block, or false when the block
// does not contain it.
func Ordinal(block netip.Prefix, addr netip.Addr) (int, bool) {
	if !block.Contains(addr) {
		return 0, false
	}
	base, a := block.Masked().Addr(), addr
	if base.Is4() {
		b4, a4 := base.As4(), a.As4()
		return int(binary.BigEndian.Uint32(a4[:]) - binary.BigEndian.Uint32(b4[:])), true
	}
	b16, a16 := base.As16(), a.As16()
	return int(binary.BigEndian.Uint64(a16[8:]) - binary.BigEndian.Uint64(b16[8:])), true
}

// BlockOrder yields every block of the pool exactly once, in an order
// seeded by the node name: each node starts at its own block and strides by
// its own odd step, so nodes claiming at the same time mostly try different
// blocks, and one node's order is the same on every retry.
func BlockOrder(pool netip.Prefix, blockSize int, node string) iter.Seq[netip.Prefix] {
	n := NumBlocks(pool, blockSize)
	h := fnv.New64a()
	h.Write([]byte(node))
	seed := h.Sum64()
	start := seed % max(n, 1)
	// An odd stride is coprime with the power-of-two block count, so the
	// walk visits every block once.
	stride := ((seed >> 32) | 1) % max(n, 1)
	if stride == 0 {
		stride = 1
	}
	return func(yield func(netip.Prefix) bool) {
		for i := range n {
			if !yield(BlockAt(pool, blockSize, (start+i*stride)%n)) {
				return
			}
		}
	}
}

// addOffset adds off to an address (wrapping within its family).
func addOffset(a netip.Addr, off uint64) netip.Addr {
	if a.Is4() {
		b := a.As4()
		binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(b[:])+uint32(off))
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	lo := binary.BigEndian.Uint64(b[8:])
	sum := lo + off
	if sum < lo { // carry into the high half
		binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(b[:8])+1)
	}
	binary.BigEndian.PutUint64(b[8:], sum)
	return netip.AddrFrom16(b)
}
