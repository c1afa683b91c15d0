"""LoginPanel: the source picker — an MLHub API (key, profiles, root URL, or the bundled demo
hub), a STAC API URL or a static STAC catalogue (path or URL) — "Test connection", and where
downloads run (this machine or a Dask scheduler)."""

from __future__ import annotations

import os
from typing import Any

import ipywidgets as W
import traitlets

from ..config.session import DEFAULT_ROOT_URL, ROOT_URL_ENV
from ._common import (
    LABEL_STYLE,
    StatusLine,
    css_widget,
    esc,
    options_from_text,
    options_to_text,
)
from .state import ExplorerState

NO_PROFILE = ""


#: Server choices that are STAC sources (no key, no profile; a URL or path instead).
STAC_CHOICES = ("stac-api", "static")


class LoginPanel(W.VBox):  # type: ignore[misc]
    """Pick a source: an MLHub API (key or profile, root URL or the bundled demo hub), a STAC
    API (its URL) or a static STAC catalogue (a folder, ``catalog.json`` path or URL, or an
    ``s3://``/``gs://``/``az://`` prefix). "Storage options" (``KEY=VALUE`` pairs, as the CLI's
    ``--storage-option``) configure the object stores the source and its assets are read from:
    :attr:`ExplorerState.storage_options`.

    "Test connection" runs in the background and shows who answered (server and number of
    datasets) or exactly what went wrong (401 message, unreachable host, wrong URL); on success
    the session becomes :attr:`ExplorerState.session`, used by every other panel.

    "Dask scheduler" sets :attr:`ExplorerState.cluster`: empty, downloads run in this kernel;
    ``tcp://host:8786`` or ``local:N``, they run on that Dask cluster (the ``[distributed]``
    extra; see ``docs/scale-out.md``). A text that is neither is refused with one line.

    Args:
        state: the shared state (a new one if omitted).
        demo: preselect "Bundled demo hub".
    """

    def __init__(self, state: ExplorerState | None = None, *, demo: bool = False) -> None:
        self.state = state if state is not None else ExplorerState()
        st = self.state
        configured = os.environ.get(ROOT_URL_ENV) or DEFAULT_ROOT_URL

        self.server = W.Dropdown(
            options=[
                ("the API at the root URL below", "url"),
                ("the bundled demo hub (offline, in this kernel, no key)", "demo"),
                ("a STAC API at the URL below", "stac-api"),
                ("a static STAC catalogue (folder, catalog.json path or URL)", "static"),
            ],
            value="demo" if demo else "url",
            description="Server",
            style=LABEL_STYLE,
            layout=W.Layout(width="min(560px, 100%)"),
        )
        self.root_url = W.Text(
            value=configured,
            description="Root URL",
            placeholder="https://…/mlhub/v1/",
            style=LABEL_STYLE,
            layout=W.Layout(width="min(560px, 100%)"),
        )
        self.location = W.Text(
            description="URL or path",
            placeholder="https://…/stac/v1/  or  /data/nasa_marine_debris/catalog.json",
            style=LABEL_STYLE,
            layout=W.Layout(width="min(560px, 100%)"),
        )
        self.storage = W.Text(
            value=options_to_text(st.storage_options),
            description="Storage options",
            placeholder="for s3:// gs:// az://  e.g. endpoint=https://… skip_signature=true",
            tooltip="KEY=VALUE pairs, as mlhub's --storage-option; credentials come from the "
            "cloud's environment (AWS_*, GOOGLE_*, AZURE_*)",
            style=LABEL_STYLE,
            layout=W.Layout(width="min(560px, 100%)"),
        )
        self.profile = W.Dropdown(
            options=[("(none: use the key below or the environment)", NO_PROFILE)],
            value=NO_PROFILE,
            description="Profile",
            style=LABEL_STYLE,
            layout=W.Layout(width="min(560px, 100%)"),
        )
        self.api_key = W.Password(
            description="API key",
            placeholder="empty: profile, MLHUB_API_KEY or anonymous",
            style=LABEL_STYLE,
            layout=W.Layout(width="min(560px, 100%)"),
        )
        self.connect_button = W.Button(
            description="Test connection",
            button_style="primary",
            icon="plug",
            tooltip="Connect with these settings and show who answered",
        )
        self.profile_name = W.Text(
            description="Save as profile",
            placeholder="profile name, e.g. default",
            style=LABEL_STYLE,
            layout=W.Layout(width="min(400px, 100%)"),
        )
        self.save_button = W.Button(
            description="Save profile",
            icon="save",
            tooltip="Save the API key and root URL above as a profile in the profiles file",
        )
        self.connection = W.HTML()
        self.cluster = W.Text(
            value=st.cluster,
            description="Dask scheduler",
            placeholder="empty: download in this kernel · tcp://host:8786 · local:4",
            continuous_update=False,
            style=LABEL_STYLE,
            layout=W.Layout(width="min(560px, 100%)"),
        )
        self.cluster_status = StatusLine(st, ["cluster"])
        self.status = StatusLine(st, ["login"])
        self.profile_status = StatusLine(st, ["profiles"])
        self.help = W.HTML(
            '<span class="mlhub-help">Keys and profiles are the ones of <code>mlhub configure'
            "</code> (profiles file <code>$MLHUB_HOME/profiles</code>). The bundled demo hub "
            "needs neither. A catalogue in an object store takes storage options: "
            "<code>endpoint=https://data.source.coop skip_signature=true</code> reads a public "
            "bucket of Source Cooperative. A Dask scheduler spreads downloads over its "
            "workers (they must see the output directory at the same path; needs "
            "<code>mlhub_widgets[distributed]"
            "</code>).</span>"
        )

        for widget, cls in [
            (self.server, "mlhub-server"),
            (self.root_url, "mlhub-root-url"),
            (self.location, "mlhub-location"),
            (self.storage, "mlhub-storage-options"),
            (self.profile, "mlhub-profile"),
            (self.api_key, "mlhub-api-key"),
            (self.connect_button, "mlhub-connect"),
            (self.profile_name, "mlhub-profile-name"),
            (self.save_button, "mlhub-save-profile"),
            (self.connection, "mlhub-connection"),
            (self.cluster, "mlhub-cluster"),
            (self.cluster_status, "mlhub-cluster-status"),
            (self.status, "mlhub-login-status"),
            (self.profile_status, "mlhub-profile-status"),
        ]:
            widget.add_class(cls)

        self.profile_row = W.HBox(
            [self.profile_name, self.save_button, self.profile_status],
            layout=W.Layout(align_items="center", flex_flow="row wrap"),
        )
        super().__init__(
            [
                css_widget(),
                self.server,
                self.root_url,
                self.location,
                self.storage,
                self.profile,
                self.api_key,
                self.connect_button,
                self.status,
                self.connection,
                self.profile_row,
                W.HBox(
                    [self.cluster, self.cluster_status],
                    layout=W.Layout(align_items="center", flex_flow="row wrap"),
                ),
                self.help,
            ]
        )
        self.add_class("mlhub-login")
        self.add_class("mlhub-panel")

        self.connect_button.on_click(self._on_connect)
        self.save_button.on_click(self._on_save)
        self.server.observe(self._on_server, names="value")
        self.profile.observe(self._on_profile, names="value")
        self.cluster.observe(self._on_cluster, names="value")
        st.observe(self._render_cluster, names="cluster")
        st.observe(self._render_storage, names="storage_options")
        st.observe(self._render_profiles, names="profiles")
        st.observe(self._render_connection, names=["connection", "session", "source", "errors"])
        st.observe(self._render_busy, names="busy")
        self._on_server()
        self._render_profiles()
        self._render_connection()
        st.refresh_profiles()

    # -- intent ------------------------------------------------------------------------------
    def _on_connect(self, _button: object = None) -> None:
        if self.server.value in STAC_CHOICES:
            try:
                options = options_from_text(self.storage.value)
            except ValueError as exc:
                self.state.set_error("login", str(exc))
                return
            self.state.connect_source(
                self.location.value, kind=self.server.value, storage_options=options
            )
            return
        demo = self.server.value == "demo"
        self.state.connect(
            api_key=self.api_key.value or None,
            profile=self.profile.value or None,
            root_url=None if demo else (self.root_url.value.strip() or None),
            demo=demo,
        )

    def _on_save(self, _button: object = None) -> None:
        root = None if self.server.value == "demo" else (self.root_url.value.strip() or None)
        self.state.save_profile(self.profile_name.value, self.api_key.value, root)

    def _on_server(self, _change: object = None) -> None:
        choice = self.server.value
        self.root_url.disabled = choice == "demo"
        stac = choice in STAC_CHOICES
        # a STAC source has no key, profile or root URL; an MLHub API has no catalogue path
        for widget in (self.root_url, self.profile, self.api_key, self.profile_row):
            widget.layout.display = "none" if stac else None
        for widget in (self.location, self.storage):
            widget.layout.display = None if stac else "none"

    def _on_cluster(self, change: dict[str, Any]) -> None:
        try:
            self.state.cluster = change["new"]
        except traitlets.TraitError as exc:
            self.state.set_error("cluster", str(exc))
        else:
            self.state.set_error("cluster", None)

    def _on_profile(self, change: dict[str, Any]) -> None:
        root = self.state.profile_urls.get(change["new"]) if change["new"] else None
        if root:
            self.root_url.value = root
            self.server.value = "url"

    # -- rendering -----------------------------------------------------------------------------
    def _render_profiles(self, _change: object = None) -> None:
        names = list(self.state.profiles)
        options = [("(none: use the key below or the environment)", NO_PROFILE)]
        options += [(name, name) for name in names]
        current = self.profile.value if self.profile.value in names else NO_PROFILE
        if list(self.profile.options) != options:
            with self.profile.hold_trait_notifications():
                self.profile.options = options
                self.profile.value = current

    def _render_connection(self, _change: object = None) -> None:
        st = self.state
        text = st.connection
        if not text:
            value = '<span class="mlhub-help">Not connected.</span>'
        elif st.errors.get("login"):
            # the test above failed: the earlier connection is still the one in use
            value = (
                f'<span class="mlhub-help">The previous connection stays in use: {esc(text)}</span>'
            )
        else:
            value = f'<span class="mlhub-msg mlhub-msg-ok">✓ {esc(text)}</span>'
        if self.connection.value != value:
            self.connection.value = value

    def _render_cluster(self, _change: object = None) -> None:
        if self.cluster.value.strip() != self.state.cluster:
            self.cluster.value = self.state.cluster

    def _render_storage(self, _change: object = None) -> None:
        text = options_to_text(self.state.storage_options)
        if options_from_text_or_none(self.storage.value) != self.state.storage_options:
            self.storage.value = text

    def _render_busy(self, _change: object = None) -> None:
        busy = self.state.is_busy("login")
        self.connect_button.disabled = busy
        self.save_button.disabled = self.state.is_busy("profiles")


def options_from_text_or_none(text: str) -> dict[str, str] | None:
    """:func:`options_from_text`, None for a text that is not KEY=VALUE pairs."""
    try:
        return options_from_text(text)
    except ValueError:
        return None
