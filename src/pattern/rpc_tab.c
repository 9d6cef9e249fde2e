/*
 * The calls a client has in flight: a hash table on the call id, and a heap
 * of their deadlines.  See rpc_int.h.
 */
#include "rpc_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TAB_MIN 64u
#define TAB_MAX (2u * IPCX_RPC_MAX_CALLS) /* half full at the most */

void rpc_tab_init(struct rpc_tab *t)
{
	memset(t, 0, sizeof(*t));
}

void rpc_tab_fini(struct rpc_tab *t)
{
	free(t->slot);
	free(t->heap);
	memset(t, 0, sizeof(*t));
}

/* The slot holding id, or the empty slot where it would go. */
static size_t probe(const struct rpc_tab *t, uint64_t id)
{
	size_t mask = t->cap - 1, i = (size_t)id & mask;
	while (t->slot[i].id && t->slot[i].id != id)
		i = (i + 1) & mask;
	return i;
}

struct rpc_call *rpc_tab_find(struct rpc_tab *t, uint64_t id)
{
	if (!t->cap || !id)
		return NULL;
	struct rpc_call *c = &t->slot[probe(t, id)];
	return c->id == id ? c : NULL;
}

/* ---- the heap of deadlines ------------------------------------------------------- */

static void heap_set(struct rpc_tab *t, size_t i, struct rpc_heap_ent e)
{
	t->heap[i] = e;
	rpc_tab_find(t, e.id)->heap = (uint32_t)i;
}

static void heap_up(struct rpc_tab *t, size_t i)
{
	struct rpc_heap_ent e = t->heap[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (t->heap[p].deadline <= e.deadline)
			break;
		heap_set(t, i, t->heap[p]);
		i = p;
	}
	heap_set(t, i, e);
}

static void heap_down(struct rpc_tab *t, size_t i)
{
	struct rpc_heap_ent e = t->heap[i];
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		int64_t best = e.deadline;
		if (l < t->hn && t->heap[l].deadline < best)
			m = l, best = t->heap[l].deadline;
		if (l + 1 < t->hn && t->heap[l + 1].deadline < best)
			m = l + 1;
		if (m == i)
			break;
		heap_set(t, i, t->heap[m]);
		i = m;
	}
	heap_set(t, i, e);
}

static void heap_remove(struct rpc_tab *t, size_t i)
{
	t->hn--;
	if (i == t->hn)
		return;
	struct rpc_heap_ent last = t->heap[t->hn];
	heap_set(t, i, last);
	if (i > 0 && t->heap[(i - 1) / 2].deadline > last.deadline)
		heap_up(t, i);
	else
		heap_down(t, i);
}

int64_t rpc_tab_first_deadline(const struct rpc_tab *t)
{
	return t->hn ? t->heap[0].deadline : -1;
}

uint64_t rpc_tab_expired(const struct rpc_tab *t, int64_t now)
{
	return t->hn && t->heap[0].deadline <= now ? t->heap[0].id : 0;
}

/* ---- insert, delete ---------------------------------------------------------------- */

static int grow(struct rpc_tab *t)
{
	size_t cap = t->cap ? t->cap * 2 : TAB_MIN;
	struct rpc_call *n = calloc(cap, sizeof(*n));
	if (!n)
		return -ENOMEM;
	struct rpc_call *old = t->slot;
	size_t ocap = t->cap;
	t->slot = n;
	t->cap = cap;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].id)
			t->slot[probe(t, old[i].id)] = old[i];
	free(old);
	return 0;
}

int rpc_tab_room(struct rpc_tab *t)
{
	if (t->n >= IPCX_RPC_MAX_CALLS)
		return ipcx_errdetail_set(-ENOBUFS, "%d calls in flight: the most one client holds",
					  IPCX_RPC_MAX_CALLS);
	if ((t->n + 1) * 2 > t->cap && t->cap < TAB_MAX) {
		int r = grow(t);
		if (r < 0)
			return r;
	}
	if (t->hn == t->hcap) {
		size_t hcap = t->hcap ? t->hcap * 2 : TAB_MIN;
		struct rpc_heap_ent *h = realloc(t->heap, hcap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		t->heap = h;
		t->hcap = hcap;
	}
	return 0;
}

int rpc_tab_add(struct rpc_tab *t, uint64_t id, int64_t deadline)
{
	int r = rpc_tab_room(t);
	if (r < 0)
		return r;
	size_t i = probe(t, id);
	if (t->slot[i].id)
		return -EEXIST;
	t->slot[i] = (struct rpc_call){ id, deadline, RPC_NO_HEAP, RPC_NO_WORKER };
	t->n++;
	if (deadline >= 0) {
		t->heap[t->hn] = (struct rpc_heap_ent){ deadline, id };
		heap_up(t, t->hn++);
	}
	return 0;
}

bool rpc_tab_del(struct rpc_tab *t, uint64_t id)
{
	struct rpc_call *c = rpc_tab_find(t, id);
	if (!c)
		return false;
	if (c->heap != RPC_NO_HEAP)
		heap_remove(t, c->heap);
	/* Backward shift: pull later entries of the run into the hole. */
	size_t mask = t->cap - 1, hole = (size_t)(c - t->slot), i = hole;
	for (;;) {
		i = (i + 1) & mask;
		if (!t->slot[i].id)
			break;
		size_t home = (size_t)t->slot[i].id & mask;
		/* Movable if its home is not in (hole, i] (cyclically). */
		bool between = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
		if (between)
			continue;
		t->slot[hole] = t->slot[i]; /* the heap names calls by id: it needs no change */
		hole = i;
	}
	t->slot[hole].id = 0;
	t->n--;
	return true;
}

size_t rpc_tab_ids(const struct rpc_tab *t, int w, uint64_t **ret)
{
	*ret = NULL;
	if (!t->n)
		return 0;
	uint64_t *v = malloc(t->n * sizeof(*v));
	if (!v)
		return 0;
	size_t n = 0;
	for (size_t i = 0; i < t->cap; i++)
		if (t->slot[i].id && (w < 0 || t->slot[i].worker == (uint16_t)w))
			v[n++] = t->slot[i].id;
	*ret = v;
	return n;
}
