"""The loaded catalog: campaigns, the directory of people, the channel accounts."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from .approvers import DirectoryIndex
from .models import Campaign, ChannelAccount, ChannelRegistry, Directory
from .yamlsource import SourceDocument

REGISTRY_DIR = "registry"
TEMPLATES_DIR = "templates"
IMAGES_DIR = "images"
PEOPLE_FILE = "people.yaml"
CHANNELS_FILE = "channels.yaml"
NOT_CAMPAIGN_DIRS = {REGISTRY_DIR, TEMPLATES_DIR, IMAGES_DIR}


@dataclass
class CampaignSource:
    campaign: Campaign
    path: Path
    doc: SourceDocument

    def line_of(self, *path: str | int) -> int:
        return self.doc.line_of(tuple(path))


@dataclass
class Catalog:
    """``root`` is the catalog folder people edit (new campaign files are written there,
    paths are shown relative to it). ``content_root``, when set, is the frozen copy the
    catalog was validated from (:mod:`newsroom.catalog.snapshot`): templates and images
    are read from there, so what renders is what validated, whatever the folder holds now.
    """

    root: Path
    directory: Directory
    registry: ChannelRegistry
    campaigns: dict[str, CampaignSource] = field(default_factory=dict)
    content_root: Path | None = None

    def __post_init__(self) -> None:
        self.index = DirectoryIndex(self.directory)
        self.accounts: dict[str, ChannelAccount] = {a.name: a for a in self.registry.accounts}

    @property
    def templates_dir(self) -> Path:
        return (self.content_root or self.root) / TEMPLATES_DIR

    @property
    def images_dir(self) -> Path:
        return (self.content_root or self.root) / IMAGES_DIR

    def campaign(self, campaign_id: str) -> CampaignSource:
        try:
            return self.campaigns[campaign_id]
        except KeyError:
            close = difflib.get_close_matches(campaign_id, list(self.campaigns), n=1)
            hint = (f"did you mean {close[0]!r}?" if close
                    else "run `newsroom validate` to list them")
            raise LookupError(
                f"no campaign with id {campaign_id!r} in {self.root}; {hint}"
            ) from None

    def account(self, name: str) -> ChannelAccount:
        return self.accounts[name]


def find_catalog_root(path: Path) -> Path | None:
    """The folder holding registry/people.yaml, searching ``path`` and its parents."""
    path = path.resolve()
    for candidate in [path, *path.parents]:
        if (candidate / REGISTRY_DIR / PEOPLE_FILE).is_file():
            return candidate
    return None


def campaign_files(root: Path) -> list[Path]:
    files = []
    for path in sorted(root.rglob("*.y*ml")):
        relative = path.relative_to(root)
        if path.suffix not in (".yaml", ".yml"):
            continue
        if relative.parts[0] in NOT_CAMPAIGN_DIRS:
            continue
        if any(part.startswith((".", "_")) for part in relative.parts):
            continue
        files.append(path)
    return files
