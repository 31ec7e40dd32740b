"""KubernetesBackend through the real kubernetes client against the loopback fake API server."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from dcops.errors import InputError, SchedulerError, UnknownNameError
from dcops.jobstate import JobState
from dcops.kube import KubeApi
from scheduler.backends.base import SchedulerBackend, create_backend
from scheduler.kubernetes.backend import KubernetesBackend
from scheduler.kubernetes.render import QUEUE_LABEL
from scheduler.tenants.contract import TenantContract
from tests.scheduler.k8s_fake_server import FakeKubeServer
from tests.scheduler.k8s_support import (
    admitted,
    multi_node,
    running_server,
    synced,
    tenant_b,
)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def server() -> Iterator[FakeKubeServer]:
    with running_server() as srv:
        yield srv


@pytest.fixture
def api(server: FakeKubeServer) -> KubeApi:
    return KubeApi.for_host(server.url, token="test-token")


@pytest.fixture
def bravo(root: Path) -> TenantContract:
    return tenant_b(root)


@pytest.fixture
def backend(api: KubeApi, tenant: TenantContract, bravo: TenantContract) -> KubernetesBackend:
    synced(api, tenant, bravo)
    return KubernetesBackend(api)


def test_registered_and_protocol(api: KubeApi) -> None:
    import scheduler.backends.kubernetes  # noqa: F401 - registers "kubernetes"

    made = create_backend("kubernetes", api=api)
    assert isinstance(made, SchedulerBackend)
    assert made.name == "kubernetes"


def test_submit_one_node_job(
    backend: KubernetesBackend, server: FakeKubeServer, tenant: TenantContract
) -> None:
    sub = backend.submit(admitted(tenant))
    assert sub.backend_job_id == "train-llm"
    job = server.get("batch/v1", "Job", "tenant-acme", "train-llm")
    assert job is not None
    assert job["metadata"]["labels"][QUEUE_LABEL] == "acme-lq"
    res = job["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert res["requests"]["nvidia.com/gpu"] == "4"
    posts = server.queries("POST", "/jobs")
    # a server-side dry run first, then the real create; both strict
    assert posts[0] == {"dryRun": "All", "fieldValidation": "Strict"}
    assert posts[1] == {"fieldValidation": "Strict"}


def test_submit_multi_node_creates_compute_domain_then_jobset(
    backend: KubernetesBackend, server: FakeKubeServer, tenant: TenantContract
) -> None:
    backend.submit(multi_node(tenant))
    cd = server.get("resource.nvidia.com/v1beta1", "ComputeDomain", "tenant-acme", "pretrain-cd")
    js = server.get("jobset.x-k8s.io/v1alpha2", "JobSet", "tenant-acme", "pretrain")
    assert cd is not None and js is not None
    assert cd["spec"]["numNodes"] == 4
    assert js["metadata"]["labels"][QUEUE_LABEL] == "acme-lq"
    created = [r.path for r in server.requests if r.method == "POST" and not r.query.get("dryRun")]
    assert created[-2:] == [
        "/apis/resource.nvidia.com/v1beta1/namespaces/tenant-acme/computedomains",
        "/apis/jobset.x-k8s.io/v1alpha2/namespaces/tenant-acme/jobsets",
    ]
    assert backend.status(tenant, "pretrain").gpus == 16


def test_namespace_comes_from_the_contract(
    backend: KubernetesBackend, server: FakeKubeServer, tenant: TenantContract
) -> None:
    backend.submit(admitted(tenant, name="nsjob"))
    paths = {r.path for r in server.requests if r.method == "POST" and "/jobs" in r.path}
    assert paths == {"/apis/batch/v1/namespaces/tenant-acme/jobs"}


def test_validate_only_creates_nothing(
    api: KubeApi, server: FakeKubeServer, tenant: TenantContract, bravo: TenantContract
) -> None:
    synced(api, tenant)
    dry = KubernetesBackend(api, validate_only=True)
    sub = dry.submit(multi_node(tenant))
    assert "nothing was created" in sub.notes[0]
    assert "kind: JobSet" in sub.rendering
    assert server.get("jobset.x-k8s.io/v1alpha2", "JobSet", "tenant-acme", "pretrain") is None
    posts = server.queries("POST", "/jobsets") + server.queries("POST", "/computedomains")
    assert posts and {q.get("dryRun") for q in posts} == {"All"}


def test_server_refusal_leaves_nothing_behind(
    backend: KubernetesBackend, server: FakeKubeServer, tenant: TenantContract
) -> None:
    server.strict_validator = lambda obj: "unknown field" if obj["kind"] == "JobSet" else None
    with pytest.raises(SchedulerError, match="400"):
        backend.submit(multi_node(tenant))
    assert (
        server.get("resource.nvidia.com/v1beta1", "ComputeDomain", "tenant-acme", "pretrain-cd")
        is None
    )


def test_duplicate_name_refused(backend: KubernetesBackend, tenant: TenantContract) -> None:
    backend.submit(admitted(tenant))
    with pytest.raises(InputError, match="already exists"):
        backend.submit(admitted(tenant))


def test_missing_namespace_is_a_scheduler_error(api: KubeApi, tenant: TenantContract) -> None:
    with pytest.raises(SchedulerError, match='namespaces "tenant-acme" not found'):
        KubernetesBackend(api).submit(admitted(tenant))


def test_status_list_states_and_gpus(
    backend: KubernetesBackend, server: FakeKubeServer, tenant: TenantContract
) -> None:
    backend.submit(admitted(tenant, name="one"))
    backend.submit(admitted(tenant, name="two"))
    backend.submit(multi_node(tenant, name="big", nodes=2))
    assert backend.status(tenant, "one").state is JobState.PENDING  # suspended: Kueue
    assert backend.gpus_in_use(tenant) == 4 + 4 + 8
    job = server.get("batch/v1", "Job", "tenant-acme", "one")
    assert job is not None
    server.put({**job, "spec": {**job["spec"], "suspend": False}, "status": {"active": 1}})
    server.put(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "one-abcde",
                "namespace": "tenant-acme",
                "labels": {"batch.kubernetes.io/job-name": "one"},
            },
            "spec": {"nodeName": "gb200-r01-t03"},
        }
    )
    running = backend.status(tenant, "one")
    assert running.state is JobState.RUNNING and running.nodes == "gb200-r01-t03"
    server.set_status(
        "batch/v1",
        "Job",
        "tenant-acme",
        "two",
        {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]},
    )
    assert backend.status(tenant, "two").state is JobState.TIMEOUT
    listed = {s.backend_job_id: s for s in backend.list(tenant)}
    assert set(listed) == {"one", "two", "big"}
    assert set(s.backend_job_id for s in backend.list(tenant, active_only=True)) == {"one", "big"}
    assert backend.gpus_in_use(tenant) == 4 + 8


def test_jobset_children_are_not_listed_twice(
    backend: KubernetesBackend, server: FakeKubeServer, tenant: TenantContract
) -> None:
    backend.submit(multi_node(tenant, name="big", nodes=2))
    js = server.get("jobset.x-k8s.io/v1alpha2", "JobSet", "tenant-acme", "big")
    assert js is not None
    child = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "big-workers-0",
            "namespace": "tenant-acme",
            "labels": {**js["metadata"]["labels"], "jobset.sigs.k8s.io/jobset-name": "big"},
            "ownerReferences": [{"kind": "JobSet", "name": "big"}],
        },
        "spec": js["spec"]["replicatedJobs"][0]["template"]["spec"],
    }
    server.put(child)
    assert [s.backend_job_id for s in backend.list(tenant)] == ["big"]
    with pytest.raises(UnknownNameError):
        backend.status(tenant, "big-workers-0")


def test_isolation_between_tenants(
    backend: KubernetesBackend,
    server: FakeKubeServer,
    tenant: TenantContract,
    bravo: TenantContract,
) -> None:
    backend.submit(admitted(tenant, name="secret-run"))
    assert backend.list(bravo) == []
    assert backend.gpus_in_use(bravo) == 0
    for call in (backend.status, backend.logs, backend.cancel):
        with pytest.raises(UnknownNameError, match="not found"):
            call(bravo, "secret-run")
    assert server.get("batch/v1", "Job", "tenant-acme", "secret-run") is not None
    lists = [r for r in server.requests if r.method == "GET" and r.path.endswith("/jobs")]
    assert {r.path for r in lists if "bravo" in r.query.get("labelSelector", "")} == {
        "/apis/batch/v1/namespaces/tenant-bravo/jobs"
    }


def test_job_not_made_by_dcops_is_not_found(
    backend: KubernetesBackend, server: FakeKubeServer, tenant: TenantContract
) -> None:
    server.put(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "by-hand", "namespace": "tenant-acme"},
            "spec": {},
        }
    )
    with pytest.raises(UnknownNameError, match="not found"):
        backend.status(tenant, "by-hand")
    with pytest.raises(UnknownNameError):
        backend.status(tenant, "../tenant-bravo/x")


def test_logs_bounded_and_from_the_jobs_pods(
    backend: KubernetesBackend, server: FakeKubeServer, tenant: TenantContract
) -> None:
    backend.submit(multi_node(tenant, name="big", nodes=2))
    for i in range(2):
        pod = f"big-workers-0-{i}-x"
        server.put(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod,
                    "namespace": "tenant-acme",
                    "labels": {"jobset.sigs.k8s.io/jobset-name": "big"},
                },
            }
        )
        server.pod_logs[("tenant-acme", pod)] = "".join(f"rank{i} step {n}\n" for n in range(5000))
    text = backend.logs(tenant, "big", tail_bytes=400)
    assert len(text.encode()) <= 400
    assert "rank0 step 4999" in text and "rank1 step 4999" in text
    assert "==> pod big-workers-0-1-x <==" in text
    log_queries = server.queries("GET", "/log")
    assert all(int(q["tailLines"]) <= 201 for q in log_queries)


def test_cancel_deletes_with_propagation(
    api: KubeApi, backend: KubernetesBackend, server: FakeKubeServer, tenant: TenantContract
) -> None:
    backend.submit(multi_node(tenant, name="big", nodes=2))
    server.put(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "big-workers-0-0-x",
                "namespace": "tenant-acme",
                "labels": {"jobset.sigs.k8s.io/jobset-name": "big"},
            },
        }
    )
    backend.cancel(tenant, "big")
    assert server.get("jobset.x-k8s.io/v1alpha2", "JobSet", "tenant-acme", "big") is None
    assert server.get("v1", "Pod", "tenant-acme", "big-workers-0-0-x") is None
    assert (
        server.get("resource.nvidia.com/v1beta1", "ComputeDomain", "tenant-acme", "big-cd") is None
    )
    assert server.queries("DELETE", "/jobsets/big") == [{"propagationPolicy": "Foreground"}]
    backend.submit(admitted(tenant, name="small"))
    KubernetesBackend(api, propagation="Background").cancel(tenant, "small")
    assert server.queries("DELETE", "/jobs/small") == [{"propagationPolicy": "Background"}]
    with pytest.raises(UnknownNameError):
        backend.cancel(tenant, "small")
    with pytest.raises(InputError, match="propagation"):
        KubernetesBackend(api, propagation="Orphan")


@pytest.mark.parametrize("gone_as_http", [False, True])
def test_watch_survives_410_by_relisting(
    backend: KubernetesBackend, server: FakeKubeServer, tenant: TenantContract, gone_as_http: bool
) -> None:
    server.gone_as_http = gone_as_http
    backend.submit(admitted(tenant, name="a"))
    events = backend.watch_jobs(tenant, timeout_s=2, deadline_s=20)
    assert isinstance(events, Generator)  # closed below to end the watch
    first = next(events)
    assert (first.type, first.status.backend_job_id, first.relisted) == ("ADDED", "a", False)
    backend.submit(admitted(tenant, name="b"))
    second = next(events)
    assert (second.type, second.status.backend_job_id) == ("ADDED", "b")
    server.compact()  # history gone: the watch's next resume gets 410
    server.remove("batch/v1", "Job", "tenant-acme", "a")
    backend.submit(admitted(tenant, name="c"))
    got = [next(events), next(events)]
    assert {(e.type, e.status.backend_job_id, e.relisted) for e in got} == {
        ("DELETED", "a", True),
        ("ADDED", "c", True),
    }
    backend.submit(admitted(tenant, name="d"))  # and it watches on afterwards
    after = next(events)
    assert (after.type, after.status.backend_job_id, after.relisted) == ("ADDED", "d", False)
    events.close()
    watches = [q for q in server.queries("GET", "/jobs") if q.get("watch")]
    assert len(watches) >= 2
    assert all("dcops.io/tenant=acme" in q["labelSelector"] for q in watches)


def test_watch_only_sees_own_tenant(
    backend: KubernetesBackend, tenant: TenantContract, bravo: TenantContract
) -> None:
    backend.submit(admitted(tenant, name="a"))
    events = backend.watch_jobs(bravo, timeout_s=1, deadline_s=1.5)
    assert list(events) == []
