"""What the browser downloads before the first paint: Radix Themes as the portal uses it, and the build's chunks.

`PortalThemePlugin` takes the place of Reflex's `RadixThemesPlugin` in rxconfig.py (Reflex finds it as one):
- the theme is light only, so the stylesheet keeps no dark theme, no colour scale that no page uses and no rule
  of a component that no page imports (cf_portal/unused_radix_css.mjs, a PostCSS step Vite runs at build, so
  the file's hash is that of what is served);
- what every page runs (React, the router, the websocket client, Reflex's state code) goes in one `vendor`
  chunk, the same file whichever page is opened first and whatever page changes.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import reflex as rx
from reflex.plugins import RadixThemesPlugin

PRUNE_SCRIPT = Path(__file__).with_name("unused_radix_css.mjs")
POSTCSS_CONFIG = "postcss.config.js"
VITE_CONFIG = "vite.config.js"
# The gray Radix pairs with each accent when the theme's gray is "auto" (Radix Themes' getMatchingGrayColor).
AUTO_GRAY = {
    **dict.fromkeys(("tomato", "red", "ruby", "crimson", "pink", "plum", "purple", "violet"), "mauve"),
    **dict.fromkeys(("iris", "indigo", "blue", "sky", "cyan"), "slate"),
    **dict.fromkeys(("teal", "jade", "mint", "green"), "sage"),
    **dict.fromkeys(("grass", "lime"), "olive"),
    **dict.fromkeys(("yellow", "amber", "orange", "brown", "gold", "bronze"), "sand"),
}
# Modules every page needs before it can render: one chunk. Only these: a module some pages do not need would
# be downloaded by all of them.
VENDOR_MODULES = r"/node_modules[\\/](react|react-dom|scheduler|react-router|@react-router|cookie|set-cookie-parser|socket\.io-client|socket\.io-parser|engine\.io-client|engine\.io-parser|@socket\.io|xmlhttprequest-ssl|debug|ms|universal-cookie|json5|@emotion|stylis|@babel[\\/]runtime|hoist-non-react-statics)[\\/]|[\\/]\.web[\\/]utils[\\/](state|context|helpers[\\/])/"  # noqa: E501
# The UI kit (Radix Themes and primitives, the icons): one chunk rather than a dozen small ones per page; what
# signed-in pages alone use (dialogs, menus) costs the sign-in page less than the extra requests would.
UI_MODULES = r"/node_modules[\\/](@radix-ui|radix-ui|lucide-react|@floating-ui|react-remove-scroll|react-remove-scroll-bar|react-style-singleton|use-callback-ref|use-sidecar|aria-hidden|get-nonce|tslib|classnames)[\\/]/"  # noqa: E501
VITE_GROUPS_MARKER = "groups: ["
APP_ROOT = "app/root.jsx"
# Reflex's root registers a loader of the whole Radix Themes library for dynamic components (none here); the
# bundler then folds every Radix component (menus, context menus, sliders...) into a chunk all pages load.
RADIX_LOADER = '    "@radix-ui/themes": () => import("@radix-ui/themes"),\n'


def postcss_config(keep_colors: list[str]) -> str:
    """Reflex's PostCSS steps (inline the imports, vendor prefixes) with the pruning between them."""
    return f"""// Written by cf_portal/frontend.py at each compile.
import postcssImport from "postcss-import";
import autoprefixer from "autoprefixer";
import unusedRadixCss from {json.dumps(PRUNE_SCRIPT.as_uri())};

const noVendorPrefix = /^(1|true|y|yes)$/i.test(process.env.REFLEX_NO_AUTOPREFIXER ?? "");

export default {{
  plugins: [
    postcssImport(),
    unusedRadixCss({{ webDir: process.cwd(), keepColors: {json.dumps(keep_colors)} }}),
    ...(noVendorPrefix ? [] : [autoprefixer()]),
  ],
}};
"""


def with_vendor_chunk(vite_config: str) -> str:
    """Reflex's vite.config.js with the vendor and UI chunk groups first among the code-splitting groups."""
    if VITE_GROUPS_MARKER not in vite_config:
        raise ValueError("Reflex's vite.config.js has no codeSplitting groups: update cf_portal/frontend.py")
    group = (f'{{ test: {VENDOR_MODULES}, name: "vendor" }},\n            '
             f'{{ test: {UI_MODULES}, name: "ui" }},\n            ')
    return vite_config.replace(VITE_GROUPS_MARKER, VITE_GROUPS_MARKER + "\n            " + group, 1)


def without_radix_loader(app_root: str) -> str:
    """Reflex's app root without the lazy loader of the whole Radix Themes library."""
    return app_root.replace(RADIX_LOADER, "")


@dataclasses.dataclass
class PortalThemePlugin(RadixThemesPlugin):
    """Radix Themes, light only, pruned to what the portal uses; see the module docstring."""

    accent: str = "indigo"
    radius: str = "medium"

    def __post_init__(self) -> None:
        self.theme = rx.theme(appearance="light", accent_color=self.accent, radius=self.radius, scaling="100%")

    def keep_colors(self) -> list[str]:
        """The theme's accent and gray (the pages' own colours are read from the compiled app at build)."""
        return sorted({self.accent, AUTO_GRAY.get(self.accent, "gray"), "gray"})

    def get_static_assets(self, **context: Any) -> list[tuple[Path, str]]:
        return [(Path(POSTCSS_CONFIG), postcss_config(self.keep_colors()))]

    def pre_compile(self, **context: Any) -> None:
        super().pre_compile(**context)
        context["add_modify_task"](VITE_CONFIG, with_vendor_chunk)
        context["add_modify_task"](APP_ROOT, without_radix_loader)
