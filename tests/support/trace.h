/*
 * Listeners racing for one name.  A round leaves a stale object behind (a
 * listener that exits without closing), or nothing, then starts two
 * listeners at the same moment (a gate: tsupport.h);
 * when exactly one wins and the other fails as it should, a dialer sends
 * the winner the round's number: proof that the name leads to it.
 */
#ifndef IPCX_TRACE_H
#define IPCX_TRACE_H

#include <stdbool.h>

struct t_race {
	int result[2];  /* what each ipcx_listen returned */
	bool both;      /* both returned */
	int wins;       /* how many returned 0 */
	bool lost_right; /* and the other an error `lost` accepts */
	int reached;    /* 0 when the winner received the number, else -1 */
	int exits;      /* the racers' exit statuses, summed: 0 when all went well */
};

/*
 * One round on url (a fresh name), after a stale object (stale) or none;
 * `shared` is 2 ints in MAP_SHARED memory.
 */
void t_race_round(const char *url, int round, int *shared, bool stale, bool (*lost)(int err),
		  struct t_race *out);

/* Exactly one winner, the loser refused rightly, the winner reached. */
bool t_race_ok(const struct t_race *r);

#endif
