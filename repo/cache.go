package repo

import (
	"container/list"
	"sync"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
)

// DefaultCacheBytes is the tree cache's default bound.
const DefaultCacheBytes = 64 << 20

// cacheKeepLevels is how many levels below the root a tree keeps when it is
// trimmed: the nodes every write to the repository goes through.
const cacheKeepLevels = 2

// Cache keeps the partly decoded trees of recently written repositories,
// least recently written first out, within a bound on their estimated
// memory. An entry is keyed by DID and tree root (data CID): Apply uses it
// only when the head it is given has that root, so an entry left behind by a
// commit the store then failed to write is never used for another head.
//
// A tree is lent out while Apply works on it (take removes it, put returns
// it), so two Applies never share one even if a caller forgets to serialize
// writes: the second simply loads from the store. Safe for concurrent use.
type Cache struct {
	mu sync.Mutex
	// max bounds the sum of the trees' estimated sizes; maxTree bounds one
	// tree, beyond which it is trimmed to its top levels.
	max, maxTree int64
	used         int64
	lru          list.List // of *cacheEntry, most recently used at the front
	byDID        map[syntax.DID]*list.Element
	stats        CacheStats
}

type cacheEntry struct {
	did  syntax.DID
	data cid.Cid
	tree *lazyTree
}

// CacheStats are counters for metrics.
type CacheStats struct {
	Repos int
	// Bytes is the estimated memory held.
	Bytes int64
	// Hits and Misses count Apply's lookups; Evictions counts trees dropped
	// for room, Trims trees cut back to their top levels.
	Hits, Misses, Evictions, Trims uint64
}

// NewCache returns a cache bounded to about maxBytes (DefaultCacheBytes
// when 0; a negative value disables it). One repository may take an eighth
// of the bound before its tree is trimmed, so a burst of random-access writes
// to one large repository cannot push every other one out.
func NewCache(maxBytes int64) *Cache {
	if maxBytes == 0 {
		maxBytes = DefaultCacheBytes
	}
	return &Cache{max: maxBytes, maxTree: maxBytes / 8, byDID: make(map[syntax.DID]*list.Element)}
}

// take removes and returns the tree of did if it is cached at root data.
func (c *Cache) take(did syntax.DID, data cid.Cid) *lazyTree {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byDID[did]
	if !ok {
		c.stats.Misses++
		return nil
	}
	e := c.remove(el)
	if e.data != data {
		c.stats.Misses++
		return nil
	}
	c.stats.Hits++
	return e.tree
}

// put caches t as the tree of did at root data, replacing any entry of did.
func (c *Cache) put(did syntax.DID, data cid.Cid, t *lazyTree) {
	if c.max < 0 {
		return
	}
	if t.size > c.maxTree {
		// Outside the lock: trimming walks the loaded part of the tree. Keep
		// as many top levels as fit in half the share, so the next writes do
		// not trim again at once.
		for keep := cacheKeepLevels; keep >= 0; keep-- {
			if t.size = trim(t.tree.Root, keep); t.size <= c.maxTree/2 {
				break
			}
		}
		c.mu.Lock()
		c.stats.Trims++
		c.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byDID[did]; ok {
		c.remove(el)
	}
	if t.size > c.maxTree {
		return
	}
	c.byDID[did] = c.lru.PushFront(&cacheEntry{did: did, data: data, tree: t})
	c.used += t.size
	for c.used > c.max {
		c.remove(c.lru.Back())
		c.stats.Evictions++
	}
}

// Forget drops the tree of did, for a repository deleted or replaced
// wholesale (an import): not needed for correctness, which the data CID key
// guarantees, but it frees the memory at once.
func (c *Cache) Forget(did syntax.DID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byDID[did]; ok {
		c.remove(el)
	}
}

// Stats returns the current counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Repos = len(c.byDID)
	s.Bytes = c.used
	return s
}

// remove unlinks an entry; c.mu must be held.
func (c *Cache) remove(el *list.Element) *cacheEntry {
	e := c.lru.Remove(el).(*cacheEntry)
	delete(c.byDID, e.did)
	c.used -= e.tree.size
	return e
}
