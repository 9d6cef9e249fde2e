/*
 * iceoryx as a peer, through its C binding: a publisher and a subscriber
 * per direction, in shared memory managed by the RouDi daemon (which
 * `ipcx bench` starts).  The publisher waits for a slow subscriber and the
 * subscriber's queue blocks the producer, so nothing is lost, as on every
 * other row.  iceoryx moves no bytes itself (zero-copy): to measure the same
 * thing as everyone else, a message is copied into the loaned chunk and out
 * of the received one.  The receiver sleeps in a wait set.
 */
#include "peer.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <iceoryx_binding_c/enums.h>
#include <iceoryx_binding_c/publisher.h>
#include <iceoryx_binding_c/runtime.h>
#include <iceoryx_binding_c/subscriber.h>
#include <iceoryx_binding_c/wait_set.h>

struct iside {
	iox_pub_storage_t pub_storage;
	iox_sub_storage_t sub_storage;
	iox_ws_storage_t ws_storage;
	iox_pub_t pub;
	iox_sub_t sub;
	iox_ws_t ws;
	bool runtime;
};

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* Wait (bounded) until both directions are connected. */
static int connected(struct bh_ctx *c, struct iside *s)
{
	for (int i = 0; i < 2000; i++) {
		if (iox_sub_get_subscription_state(s->sub) == SubscribeState_SUBSCRIBED &&
		    iox_pub_has_subscribers(s->pub))
			return 0;
		nap_ms(5);
	}
	bh_note(c->res, BH_ERROR, "iceoryx: publisher and subscriber did not connect");
	return -ETIMEDOUT;
}

static int i_open(struct bh_ctx *c)
{
	struct iside *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	c->priv = s;
	char app[100], inst[100];
	snprintf(app, sizeof(app), "%s-%u-%c", c->p->prefix, c->p->seq, c->side ? 's' : 'c');
	snprintf(inst, sizeof(inst), "%s-%u", c->p->prefix, c->p->seq);
	iox_runtime_init(app); /* waits for RouDi */
	s->runtime = true;

	iox_pub_options_t po;
	iox_pub_options_init(&po);
	po.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
	s->pub = iox_pub_init(&s->pub_storage, "ipcx-bench", inst, c->side ? "s2c" : "c2s", &po);

	iox_sub_options_t so;
	iox_sub_options_init(&so);
	so.queueCapacity = 256;
	so.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
	s->sub = iox_sub_init(&s->sub_storage, "ipcx-bench", inst, c->side ? "c2s" : "s2c", &so);

	s->ws = iox_ws_init(&s->ws_storage);
	if (iox_ws_attach_subscriber_state(s->ws, s->sub, SubscriberState_HAS_DATA, 0, NULL) !=
	    WaitSetResult_SUCCESS) {
		bh_note(c->res, BH_ERROR, "iceoryx: cannot attach the subscriber to a wait set");
		return -EIO;
	}
	return connected(c, s);
}

static int i_send(struct bh_ctx *c, const void *buf, size_t len)
{
	struct iside *s = c->priv;
	void *chunk = NULL;
	for (;;) {
		enum iox_AllocationResult r = iox_pub_loan_chunk(s->pub, &chunk, len ? (uint32_t)len : 1);
		if (r == AllocationResult_SUCCESS)
			break;
		/* The mempool of this size is spent: the reader frees chunks. */
		if (r == AllocationResult_RUNNING_OUT_OF_CHUNKS ||
		    r == AllocationResult_TOO_MANY_CHUNKS_ALLOCATED_IN_PARALLEL) {
			sched_yield();
			continue;
		}
		bh_note(c->res, r == AllocationResult_NO_MEMPOOLS_AVAILABLE ? BH_SKIP : BH_ERROR,
			"iceoryx: cannot loan a chunk of %zu bytes (allocation result %d)", len, (int)r);
		return r == AllocationResult_NO_MEMPOOLS_AVAILABLE ? -EMSGSIZE : -EIO;
	}
	memcpy(chunk, buf, len);
	iox_pub_publish_chunk(s->pub, chunk);
	return 0;
}

static int i_recv(struct bh_ctx *c, void *buf, size_t len, int timeout_ms)
{
	struct iside *s = c->priv;
	const void *chunk = NULL;
	for (;;) {
		enum iox_ChunkReceiveResult r = iox_sub_take_chunk(s->sub, &chunk);
		if (r == ChunkReceiveResult_SUCCESS)
			break;
		if (r != ChunkReceiveResult_NO_CHUNK_AVAILABLE) {
			bh_note(c->res, BH_ERROR, "iceoryx: take chunk: result %d", (int)r);
			return -EIO;
		}
		iox_notification_info_t events[1];
		uint64_t missed = 0;
		iox_ws_wait(s->ws, events, 1, &missed);
	}
	memcpy(buf, chunk, len);
	iox_sub_release_chunk(s->sub, chunk);
	return 0;
}

static void i_close(struct bh_ctx *c)
{
	struct iside *s = c->priv;
	if (!s)
		return;
	if (s->ws) {
		iox_ws_detach_subscriber_state(s->ws, s->sub, SubscriberState_HAS_DATA);
		iox_ws_deinit(s->ws);
	}
	if (s->sub)
		iox_sub_deinit(s->sub);
	if (s->pub)
		iox_pub_deinit(s->pub);
	if (s->runtime)
		iox_runtime_shutdown();
	free(s);
	c->priv = NULL;
}

static const struct bh_ops i_shm = { "shm", "iceoryx", "waitset", .open = i_open,
	.send = i_send, .recv = i_recv, .close = i_close };

/* ---- fan-out: one publisher, several subscribers ---------------------------------------- */

/*
 * The same settings as the channel rows: the publisher waits for a slow
 * subscriber (WAIT_FOR_CONSUMER, BLOCK_PRODUCER), so nothing is lost, and a
 * message is copied into the loaned chunk and out of the received one.
 * Each process is an iceoryx application of its own (RouDi, started by
 * `ipcx bench`, brokers them); the subscriber sleeps in a wait set.
 */
static void if_runtime(struct bh_fan *f, struct iside *s)
{
	char app[100];
	if (f->id < 0)
		snprintf(app, sizeof(app), "%s-%u-p", f->p->prefix, f->p->seq);
	else
		snprintf(app, sizeof(app), "%s-%u-s%d", f->p->prefix, f->p->seq, f->id);
	iox_runtime_init(app);
	s->runtime = true;
}

static int if_pub_open(struct bh_fan *f)
{
	struct iside *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	f->priv = s;
	if_runtime(f, s);
	iox_pub_options_t po;
	iox_pub_options_init(&po);
	po.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
	snprintf(f->addr, sizeof(f->addr), "%s-%u", f->p->prefix, f->p->seq);
	s->pub = iox_pub_init(&s->pub_storage, "ipcx-bench", f->addr, "fan", &po);
	return 0;
}

static int if_pub_wait(struct bh_fan *f, int n)
{
	struct iside *s = f->priv;
	(void)n; /* a count is not told; every subscriber saw itself SUBSCRIBED */
	for (int i = 0; i < 2000; i++) {
		if (iox_pub_has_subscribers(s->pub))
			return 0;
		nap_ms(5);
	}
	bh_note(f->res, BH_ERROR, "iceoryx: no subscriber connected");
	return -ETIMEDOUT;
}

static int if_pub_send(struct bh_fan *f, const void *buf, size_t len)
{
	struct iside *s = f->priv;
	void *chunk = NULL;
	for (;;) {
		enum iox_AllocationResult r = iox_pub_loan_chunk(s->pub, &chunk, (uint32_t)len);
		if (r == AllocationResult_SUCCESS)
			break;
		if (r == AllocationResult_RUNNING_OUT_OF_CHUNKS ||
		    r == AllocationResult_TOO_MANY_CHUNKS_ALLOCATED_IN_PARALLEL) {
			sched_yield();
			continue;
		}
		bh_note(f->res, r == AllocationResult_NO_MEMPOOLS_AVAILABLE ? BH_SKIP : BH_ERROR,
			"iceoryx: cannot loan a chunk of %zu bytes (allocation result %d)", len, (int)r);
		return r == AllocationResult_NO_MEMPOOLS_AVAILABLE ? -EMSGSIZE : -EIO;
	}
	memcpy(chunk, buf, len);
	iox_pub_publish_chunk(s->pub, chunk);
	return 0;
}

static int if_sub_open(struct bh_fan *f)
{
	struct iside *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	f->priv = s;
	if_runtime(f, s);
	iox_sub_options_t so;
	iox_sub_options_init(&so);
	so.queueCapacity = 256;
	so.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
	s->sub = iox_sub_init(&s->sub_storage, "ipcx-bench", f->addr, "fan", &so);
	s->ws = iox_ws_init(&s->ws_storage);
	if (iox_ws_attach_subscriber_state(s->ws, s->sub, SubscriberState_HAS_DATA, 0, NULL) !=
	    WaitSetResult_SUCCESS) {
		bh_note(f->res, BH_ERROR, "iceoryx: cannot attach the subscriber to a wait set");
		return -EIO;
	}
	for (int i = 0; i < 2000; i++) {
		if (iox_sub_get_subscription_state(s->sub) == SubscribeState_SUBSCRIBED)
			return 0;
		nap_ms(5);
	}
	bh_note(f->res, BH_ERROR, "iceoryx: the subscriber did not connect");
	return -ETIMEDOUT;
}

static int if_sub_recv(struct bh_fan *f, void *buf, size_t len, int timeout_ms)
{
	struct iside *s = f->priv;
	const void *chunk = NULL;
	enum iox_ChunkReceiveResult r = iox_sub_take_chunk(s->sub, &chunk);
	if (r == ChunkReceiveResult_NO_CHUNK_AVAILABLE) {
		iox_notification_info_t events[1];
		uint64_t missed = 0;
		struct timespec t = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };
		iox_ws_timed_wait(s->ws, t, events, 1, &missed);
		r = iox_sub_take_chunk(s->sub, &chunk);
		if (r == ChunkReceiveResult_NO_CHUNK_AVAILABLE)
			return -ETIMEDOUT;
	}
	if (r != ChunkReceiveResult_SUCCESS) {
		bh_note(f->res, BH_ERROR, "iceoryx: take chunk: result %d", (int)r);
		return -EIO;
	}
	memcpy(buf, chunk, len);
	iox_sub_release_chunk(s->sub, chunk);
	return 0;
}

static void if_close(struct bh_fan *f)
{
	struct bh_ctx c = { .priv = f->priv };
	i_close(&c);
	f->priv = NULL;
}

static const struct bh_fan_ops if_shm = { "pubsub-shm", "iceoryx", .pub_open = if_pub_open,
	.pub_wait = if_pub_wait, .pub_send = if_pub_send, .sub_open = if_sub_open,
	.sub_recv = if_sub_recv, .close = if_close };

const struct bh_fan_ops *peer_fan_ops(const char *transport)
{
	return !strcmp(transport, "pubsub-shm") ? &if_shm : NULL;
}

const struct bh_ops *peer_ops(const char *transport)
{
	return !strcmp(transport, "shm") ? &i_shm : NULL;
}

const char *peer_version(void)
{
	return "iceoryx 2.0 (C binding)";
}
