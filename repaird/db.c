/*
 * db.c -- repaird's one PostgreSQL session. The advisory lock lives on it:
 * when the session breaks (PostgreSQL restarted, network cut) the lock is
 * gone too, so repaird stops working, reconnects and competes for the
 * lock again like any standby.
 */

#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repaird.h"


int
rd_db_connect(rd_ctx *x)
{
    const char  *keys[] = { "dbname", "connect_timeout", "keepalives",
                            "keepalives_idle", "keepalives_interval",
                            "keepalives_count", "application_name", NULL };
    const char  *vals[] = { x->cf.pg, "3", "1", "5", "2", "3",
                            "plinth-repaird", NULL };
    PGresult    *res;

    rd_db_close(x);
    x->pg = PQconnectdbParams(keys, vals, 1);
    if (x->pg == NULL || PQstatus(x->pg) != CONNECTION_OK) {
        rd_log(RD_LOG_WARN, "cannot connect to PostgreSQL: %s",
               x->pg ? PQerrorMessage(x->pg) : "out of memory");
        rd_db_close(x);
        return -1;
    }
    res = PQexec(x->pg, "SET statement_timeout = '120s'");
    PQclear(res);
    rd_log(RD_LOG_INFO, "connected to PostgreSQL");
    __atomic_store_n(&x->stats.db_up, 1, __ATOMIC_RELAXED);
    return 0;
}


void
rd_db_close(rd_ctx *x)
{
    if (x->pg != NULL) {
        PQfinish(x->pg);
        x->pg = NULL;
    }
    if (x->leader) {
        rd_log(RD_LOG_WARN, "lost the PostgreSQL session: no longer the "
               "working repaird");
    }
    x->leader = 0;
    __atomic_store_n(&x->stats.leader, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&x->stats.db_up, 0, __ATOMIC_RELAXED);
}


int
rd_db_ok(rd_ctx *x)
{
    return x->pg != NULL && PQstatus(x->pg) == CONNECTION_OK;
}


/* 1: we hold the lock (now or already), 0: another repaird does, -1 error */
int
rd_db_try_lock(rd_ctx *x)
{
    PGresult  *res;
    int        got;

    res = rd_db_exec(x, "SELECT pg_try_advisory_lock(" RD_LOCK_KEY ")", 0,
                     NULL);
    if (res == NULL) {
        return -1;
    }
    got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (got) {
        x->leader = 1;
        __atomic_store_n(&x->stats.leader, 1, __ATOMIC_RELAXED);
        rd_log(RD_LOG_INFO, "took the repaird lock: this instance works now");
    }
    return got;
}


PGresult *
rd_db_exec(rd_ctx *x, const char *sql, int n, const char *const *params)
{
    PGresult        *res;
    ExecStatusType   st;

    if (x->pg == NULL) {
        return NULL;
    }
    res = PQexecParams(x->pg, sql, n, NULL, params, NULL, NULL, 0);
    st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        return res;
    }
    rd_log(RD_LOG_ERROR, "query failed: %s (%.80s)",
           res ? PQresultErrorMessage(res) : PQerrorMessage(x->pg), sql);
    PQclear(res);
    if (PQstatus(x->pg) != CONNECTION_OK) {
        rd_db_close(x);
    }
    return NULL;
}
