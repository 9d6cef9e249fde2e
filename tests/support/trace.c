#include "trace.h"

#include "tsupport.h"

#include <criterion/criterion.h>
#include <ipcx.h>
#include <signal.h>

struct racer {
	const char *url;
	struct t_sync *go, *done;
	int *result;
	int round;
};

/* A listener that exits without closing: its object stays behind, stale. */
static int listen_exit(void *url)
{
	ipcx_chan *l;
	return ipcx_listen(url, 0, &l) == 0 ? 0 : 1;
}

static int race_listen(void *arg)
{
	struct racer *a = arg;
	if (!t_wait_gate(a->go, T_GUARD_MS))
		return 10;
	ipcx_chan *l;
	*a->result = ipcx_listen(a->url, 0, &l);
	t_post(a->done);
	if (*a->result < 0)
		return 0;
	/* The winner: its object must be the one the name leads to. */
	int v = -1;
	ssize_t n = ipcx_recv(l, &v, sizeof(v), T_GUARD_MS);
	int st = n == sizeof(v) && v == a->round ? 0 : 3;
	return ipcx_close(l) == 0 ? st : 4;
}

void t_race_round(const char *url, int round, int *shared, bool stale, bool (*lost)(int err),
		  struct t_race *out)
{
	if (stale)
		cr_assert_eq(t_join(t_spawn(listen_exit, (void *)url), T_GUARD_MS), 0,
			     "%s round %d: the first listener", url, round);
	struct t_sync go, done;
	t_sync_init(&go);
	t_sync_init(&done);
	pid_t pid[2];
	for (int i = 0; i < 2; i++) {
		shared[i] = 1;
		struct racer a = { url, &go, &done, &shared[i], round }; /* copied by fork */
		pid[i] = t_spawn(race_listen, &a);
	}
	t_open_gate(&go); /* both start at the same moment */
	out->both = t_wait_post(&done, T_GUARD_MS) && t_wait_post(&done, T_GUARD_MS);
	out->result[0] = shared[0];
	out->result[1] = shared[1];
	out->wins = (shared[0] == 0) + (shared[1] == 0);
	out->lost_right = lost(shared[0]) || lost(shared[1]);
	ipcx_chan *d = NULL;
	int r = out->both && out->wins == 1 && out->lost_right ? ipcx_dial(url, 0, &d) : -1;
	if (r == 0 && ipcx_send(d, &round, sizeof(round), T_GUARD_MS) != sizeof(round))
		r = -1;
	if (r < 0) { /* a failure: nobody is going to receive */
		kill(pid[0], SIGKILL);
		kill(pid[1], SIGKILL);
	}
	out->reached = r < 0 ? -1 : 0;
	out->exits = t_join(pid[0], T_GUARD_MS) + t_join(pid[1], T_GUARD_MS);
	ipcx_close(d);
	t_sync_close(&go);
	t_sync_close(&done);
}

bool t_race_ok(const struct t_race *r)
{
	return r->both && r->wins == 1 && r->lost_right && r->reached == 0 && r->exits == 0;
}
