"""Flow ``retry-publication``: the office publishes a failed post again, from the Prefect UI.

Deployment "retry-publication": *Run* → *Custom run* shows a form with the publication's
number (``newsroom channels open`` lists them; the alert mail names it) and who asks.
The same code path as ``newsroom channels retry ID`` (:mod:`newsroom.retries`): checked,
audited, published through the locked failed → publishing transition, so it goes out
once however often it is asked for. The run ends Completed when the post is out (or a
manual channel's owner was asked), Failed with the reason otherwise; a Markdown artifact
says what happened.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from prefect.states import Completed, Failed

from newsroom import retries
from newsroom.markdown import md_link, md_text
from newsroom.runtime import get_runtime


@flow(name="retry-publication", flow_run_name="retry publication {publication_id}",
      persist_result=False)
async def retry_publication(publication_id: int, by: str, even_if_late: bool = False):
    """Publish a failed publication again, after its cause was fixed.

    Args:
        publication_id: The publication's number (`newsroom channels open`, the alert mail).
        by: Who asks for it (your id in registry/people.yaml or your name): audited.
        even_if_late: Publish it even though it is past its campaign's grace window.
    """
    logger = get_run_logger()
    runtime = get_runtime()
    try:
        outcome = await retries.retry_publication(
            runtime, publication_id, by=by, via="prefect", even_if_late=even_if_late)
    except retries.RetryRefused as exc:
        logger.error("not retried: %s", exc)
        return Failed(message=f"not retried: {exc}")
    done, said = retries.describe_outcome(outcome)
    link = md_link("live post", outcome.remote_url) if outcome.remote_url else ""
    await acreate_markdown_artifact(
        key=f"retry-publication-{publication_id}",
        markdown=(f"# Retry of publication {publication_id}\n\n"
                  "| channel | result | link |\n|---|---|---|\n"
                  f"| {md_text(outcome.channel)} | {md_text(said, limit=500)} | {link} |\n\n"
                  f"Asked for by {md_text(by)}.\n"),
        description=f"Retry of publication {publication_id}")
    if done:
        logger.info("%s", said)
        return Completed(message=said)
    logger.error("%s", said)
    return Failed(message=said)
