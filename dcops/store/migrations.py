"""Versioned schema migrations of the state store.

Each entry upgrades ``PRAGMA user_version`` from its index to index + 1. Never
edit a released migration: append a new one. Tables are laid out for what the
store holds over time: burn-in/sweep runs and results, node lifecycle state,
tenants, tokens and jobs, fleet baselines, and the audit chain.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema
    """
    CREATE TABLE audit_log (
        seq        INTEGER PRIMARY KEY,          -- position in the chain, 1-based, no gaps
        ts         TEXT    NOT NULL,             -- UTC ISO-8601 with microseconds
        actor      TEXT    NOT NULL,             -- who: OS user, tenant:<name>, cron:<job>
        action     TEXT    NOT NULL,             -- drain, resume, submit, cancel, runbook.step ...
        target     TEXT    NOT NULL,             -- node hostlist, job id, tenant ...
        evidence   TEXT    NOT NULL,             -- canonical JSON
        outcome    TEXT    NOT NULL,             -- ok, failed, dry-run, refused ...
        prev_hash  TEXT    NOT NULL,
        hash       TEXT    NOT NULL UNIQUE
    );
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

    CREATE TABLE runs (
        run_id      TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,               -- burnin, sweep, recheck ...
        started_at  TEXT NOT NULL,
        finished_at TEXT,
        status      TEXT NOT NULL,               -- running, pass, warn, fail, error, aborted
        sku         TEXT,
        targets     TEXT NOT NULL,               -- hostlist
        params      TEXT NOT NULL DEFAULT '{}',  -- JSON
        summary     TEXT NOT NULL DEFAULT '{}'   -- JSON
    );
    CREATE INDEX runs_kind_started ON runs(kind, started_at);

    CREATE TABLE results (
        run_id    TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        node      TEXT NOT NULL,
        gpu       INTEGER,                       -- NULL for node- or link-level results
        "check"   TEXT NOT NULL,
        metric    TEXT NOT NULL,
        value     REAL,
        threshold REAL,
        status    TEXT NOT NULL,                 -- pass, warn, fail, error
        message   TEXT NOT NULL DEFAULT '',
        details   TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX results_run ON results(run_id);
    CREATE INDEX results_node ON results(node);

    CREATE TABLE node_state (
        node                 TEXT PRIMARY KEY,
        state                TEXT NOT NULL,      -- ok, suspect, drained, repair
        since                TEXT NOT NULL,
        reason               TEXT NOT NULL DEFAULT '',
        drained_by_dcops     INTEGER NOT NULL DEFAULT 0,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        consecutive_passes   INTEGER NOT NULL DEFAULT 0,
        evidence             TEXT NOT NULL DEFAULT '{}',
        updated_at           TEXT NOT NULL
    );

    CREATE TABLE baselines (
        sku        TEXT NOT NULL,
        metric     TEXT NOT NULL,                -- e.g. gemm_bf16_tflops, all_reduce_busbw_gbps
        scope      TEXT NOT NULL,                -- gpu, node, rack, domain
        median     REAL NOT NULL,
        mad        REAL NOT NULL,
        samples    INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (sku, metric, scope)
    );

    CREATE TABLE tenants (
        name       TEXT PRIMARY KEY,
        contract   TEXT NOT NULL,                -- JSON: bindings, quota, output roots, limits
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );

    CREATE TABLE tenant_tokens (
        token_id   TEXT PRIMARY KEY,             -- public id shown to operators
        tenant     TEXT NOT NULL REFERENCES tenants(name),
        token_hash TEXT NOT NULL UNIQUE,         -- hash of the secret; the secret is never stored
        created_at TEXT NOT NULL,
        expires_at TEXT,
        revoked_at TEXT
    );

    CREATE TABLE jobs (
        job_id         TEXT PRIMARY KEY,         -- dcops job id
        tenant         TEXT NOT NULL,
        backend        TEXT NOT NULL,
        backend_job_id TEXT,
        spec_hash      TEXT NOT NULL,
        rendering      TEXT NOT NULL,            -- exactly what was submitted
        gpus           INTEGER NOT NULL,
        state          TEXT NOT NULL,
        submitted_at   TEXT NOT NULL,
        updated_at     TEXT NOT NULL
    );
    CREATE INDEX jobs_tenant ON jobs(tenant, state);
    """,
    # 2: the actuator's actions (approval queue, intents, undo), their nodes, the sim scheduler
    """
    CREATE TABLE actions (
        id           TEXT PRIMARY KEY,           -- act-YYYYmmdd-HHMMSS-xxxxxx
        kind         TEXT NOT NULL,              -- drain, resume, cordon, reboot ...
        targets      TEXT NOT NULL,              -- hostlist
        reason       TEXT NOT NULL DEFAULT '',
        evidence     TEXT NOT NULL DEFAULT '[]', -- JSON list of findings
        params       TEXT NOT NULL DEFAULT '{}', -- JSON, kind-specific
        source       TEXT NOT NULL,              -- sweep, burnin, runbook, capacity, operator
        source_run   TEXT,                       -- the run id, when a run asked
        requested_by TEXT NOT NULL,
        level        TEXT NOT NULL,              -- observe, recommend, approve, act
        status       TEXT NOT NULL,              -- pending, approved, denied, expired, started,
                                                 -- done, failed, undone, refused, skipped, observed
        message      TEXT NOT NULL DEFAULT '',
        steps        TEXT NOT NULL DEFAULT '[]', -- JSON: the policy steps and their verdicts
        call         TEXT NOT NULL DEFAULT '[]', -- JSON: the backend call (argv-like)
        backend      TEXT,                       -- node-actions backend name
        undo_kind    TEXT,                       -- the kind that reverses it, if any
        undo_of      TEXT,                       -- the action this one reverses
        undone_by    TEXT,                       -- the action that reversed this one
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL,
        expires_at   TEXT,                       -- pending approvals
        decided_by   TEXT,                       -- approver (or denier)
        decided_at   TEXT,
        executed_at  TEXT,
        pid          INTEGER,                    -- the process that wrote the intent
        host         TEXT
    );
    CREATE INDEX actions_status ON actions(status, created_at);

    CREATE TABLE action_nodes (
        action_id TEXT NOT NULL REFERENCES actions(id) ON DELETE CASCADE,
        node      TEXT NOT NULL,
        PRIMARY KEY (action_id, node)
    );
    CREATE INDEX action_nodes_node ON action_nodes(node);

    CREATE TABLE sim_scheduler (
        node          TEXT PRIMARY KEY,           -- the simulator's in-memory scheduler, kept
        states        TEXT NOT NULL,              -- JSON list: base state, then flags
        reason        TEXT NOT NULL DEFAULT '',
        reason_user   TEXT,
        reason_time_s REAL,
        updated_at    TEXT NOT NULL
    );
    """,
    # 3: runbook runs and their steps (the durable engine), the simulated fleet between commands
    """
    CREATE TABLE runbook_runs (
        run_id      TEXT PRIMARY KEY,            -- rb-YYYYmmdd-HHMMSS-xxxxxx
        runbook     TEXT NOT NULL,
        node        TEXT NOT NULL,
        rack        TEXT,
        status      TEXT NOT NULL,               -- planned, running, waiting_approval, done,
                                                 -- escalated, failed, aborted
        apply       INTEGER NOT NULL DEFAULT 0,
        autonomy    TEXT NOT NULL,               -- the run's ceiling: observe .. act
        params      TEXT NOT NULL DEFAULT '{}',  -- JSON: parameters, sim scenario, source
        definition  TEXT NOT NULL,               -- JSON: the runbook as it was when the run began
        current     TEXT,                        -- the step in progress
        message     TEXT NOT NULL DEFAULT '',
        requested_by TEXT NOT NULL,
        pid         INTEGER,                     -- the process driving it (NULL when none)
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE INDEX runbook_runs_node ON runbook_runs(node, status);

    CREATE TABLE runbook_steps (
        run_id     TEXT NOT NULL REFERENCES runbook_runs(run_id) ON DELETE CASCADE,
        seq        INTEGER NOT NULL,             -- order: preconditions, steps, rollback
        name       TEXT NOT NULL,
        kind       TEXT NOT NULL,
        phase      TEXT NOT NULL,                -- precondition, step, rollback
        status     TEXT NOT NULL,                -- pending, running, done, failed, skipped,
                                                 -- waiting_approval, recommended
        attempts   INTEGER NOT NULL DEFAULT 0,
        outcome    TEXT NOT NULL DEFAULT '',
        evidence   TEXT NOT NULL DEFAULT '{}',   -- JSON
        action_id  TEXT,                         -- the actuator's action or approval
        started_at TEXT,
        finished_at TEXT,
        PRIMARY KEY (run_id, seq)
    );

    CREATE TABLE sim_world (
        scenario   TEXT PRIMARY KEY,             -- the scenario file (absolute path)
        state      TEXT NOT NULL,                -- JSON: clock, removed faults, boots
        updated_at TEXT NOT NULL
    );
    """,
    # 4: imported failure events (capacity: availability, spares, SLO)
    """
    CREATE TABLE failure_events (
        node        TEXT NOT NULL,
        failed_at   TEXT NOT NULL,               -- UTC ISO-8601
        repaired_at TEXT,                        -- NULL: still out
        cause       TEXT NOT NULL DEFAULT '',
        source      TEXT NOT NULL,               -- imported file name; re-import replaces
        imported_at TEXT NOT NULL
    );
    CREATE INDEX failure_events_node ON failure_events(node, failed_at);
    CREATE INDEX failure_events_source ON failure_events(source);
    """,
    # 5: find a token's (or any evidence key's) audited events without a full scan
    """
    CREATE INDEX audit_log_action ON audit_log(action);
    """,
    # 6: nodes per job (0-GPU jobs are bounded by the tenant's CPU node quota)
    """
    ALTER TABLE jobs ADD COLUMN nodes INTEGER NOT NULL DEFAULT 1;
    """,
    # 7: the job's name from its spec (listed without asking the scheduler; '' for older rows)
    """
    ALTER TABLE jobs ADD COLUMN name TEXT NOT NULL DEFAULT '';
    """,
)
