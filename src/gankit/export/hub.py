"""Hugging Face Hub repos of exported generators, through huggingface_hub (the `hub` extra).

A source that is not a local path and reads USER/REPO is a Hub model repo: it is downloaded with
snapshot_download (into the Hugging Face cache; HF_HUB_OFFLINE=1 reads the cache alone) and read like a
local exported folder. Only config.json and model.safetensors are fetched. Every failure of the Hub is
one line naming the repo: not found, not reachable, offline without a cached copy, not logged in.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import GankitError

REPO_ID = re.compile(r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9._-]{1,96}(?<![.-])$")  # no '..', no ./- end
DOWNLOADED = ("config.json", "model.safetensors")  # what loading needs (not the card, samples or ONNX)


def is_repo_id(source: str | Path) -> bool:
    """USER/REPO that names no local path: neither the path itself nor its first part (a typo in
    runs/my-run stays a missing local folder, not a Hub lookup)."""
    text = str(source)
    if not REPO_ID.match(text):
        return False
    return not Path(text).exists() and not Path(text.split("/")[0]).is_dir()


def _hub():
    """huggingface_hub, with its submodules constants and errors loaded (the package loads them lazily)."""
    try:
        import huggingface_hub
        import huggingface_hub.constants  # noqa: F401
        import huggingface_hub.errors  # noqa: F401
    except ImportError:
        raise GankitError("the Hugging Face Hub needs the huggingface_hub package: pip install 'gankit[hub]'") from None
    return huggingface_hub


def _transport_errors(hub) -> tuple:
    """What the hub's HTTP client raises when nothing answers (httpx's errors are not OSErrors; requests'
    were), and the missing-token errors (LocalTokenNotFoundError is an OSError; older versions: ValueError)."""
    return (OSError, ValueError, getattr(hub.errors, "HTTPError", OSError))


def _offline(hub) -> bool:
    return bool(hub.constants.HF_HUB_OFFLINE)


def _reason(e: Exception) -> str:
    """The first line that says what went wrong (huggingface_hub puts the cause on a 'Got:' line)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    cause = next((line for line in lines if line.startswith("Got:")), lines[0] if lines else type(e).__name__)
    return cause.removeprefix("Got:").strip()[:200]


def download(repo_id: str) -> Path:
    """The local snapshot folder of a Hub model repo (downloaded or cached)."""
    hub = _hub()
    errors = hub.errors
    try:
        return Path(hub.snapshot_download(repo_id, repo_type="model", allow_patterns=list(DOWNLOADED)))
    except (errors.RepositoryNotFoundError, errors.GatedRepoError, errors.RevisionNotFoundError) as e:
        raise GankitError(f"'{repo_id}' is neither a local folder nor a model repo you can read on the Hugging Face "
                          f"Hub ({type(e).__name__}); check the path or the repo id, or log in with `hf auth login`") from None
    except errors.LocalEntryNotFoundError as e:
        if _offline(hub):
            raise GankitError(f"Hugging Face Hub repo '{repo_id}' is not in the local cache and HF_HUB_OFFLINE=1 forbids "
                              "downloading it; unset HF_HUB_OFFLINE or give a local exported folder") from None
        raise GankitError(f"'{repo_id}' is not a local folder and the Hugging Face Hub could not be reached to download "
                          f"it ({_reason(e)}); check the network or give a local exported folder") from None
    except _transport_errors(hub) as e:  # a connection error that escaped the cache fallback, a full cache
        raise GankitError(f"could not download Hugging Face Hub repo '{repo_id}' ({_reason(e)}); check the network "
                          "and the cache folder (HF_HOME)") from None


def push(folder: Path, repo_id: str, private: bool = False) -> str:
    """Upload an exported folder to a Hub model repo (created if missing). Returns the repo's URL."""
    if not REPO_ID.match(repo_id):
        raise GankitError(f"--push-to-hub '{repo_id}' is not a Hub repo id; give USER/REPO")
    hub = _hub()
    if _offline(hub):
        raise GankitError(f"HF_HUB_OFFLINE=1 is set: cannot push to Hugging Face Hub repo '{repo_id}'; unset it to push")
    try:
        url = hub.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        hub.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model",
                          commit_message="Upload a generator exported by gankit")
    except hub.errors.HfHubHTTPError as e:
        raise GankitError(f"the Hugging Face Hub refused the push to '{repo_id}' ({_reason(e)}); log in with `hf auth "
                          "login` (or set HF_TOKEN) with write access to that namespace") from None
    except _transport_errors(hub) as e:  # no connection, or no token at all
        raise GankitError(f"could not push to Hugging Face Hub repo '{repo_id}': the Hub could not be reached or you are "
                          f"not logged in ({_reason(e)}); check the network and `hf auth login`") from None
    return str(url)
