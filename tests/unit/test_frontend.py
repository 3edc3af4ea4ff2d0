"""The Radix Themes plugin of cf_portal/frontend.py: what Reflex's build gets from it (the build itself, the
pruned stylesheet and the chunks are checked on the running app in tests/e2e/test_first_load.py)."""

from __future__ import annotations

import re

import pytest
from reflex.plugins import RadixThemesPlugin
from reflex.utils import frontend_skeleton
from reflex_base.config import get_config

from cf_portal import frontend
from cf_portal.frontend import PortalThemePlugin


def test_the_portal_configures_its_own_radix_plugin_and_compressed_builds() -> None:
    config = get_config()
    plugins = [p for p in config.plugins if isinstance(p, RadixThemesPlugin)]
    assert len(plugins) == 1 and isinstance(plugins[0], PortalThemePlugin)  # Reflex adds no implicit one
    theme_props = plugins[0].theme.render()["props"]
    assert 'accentColor:"indigo"' in theme_props and str(plugins[0].theme.appearance) == '"light"'
    assert set(config.frontend_compression_formats) == {"brotli", "gzip"}


@pytest.mark.parametrize(("accent", "kept"), [("indigo", ["gray", "indigo", "slate"]),
                                              ("tomato", ["gray", "mauve", "tomato"]),
                                              ("gray", ["gray"])])
def test_the_theme_keeps_its_accent_and_matching_gray(accent: str, kept: list[str]) -> None:
    assert PortalThemePlugin(accent=accent).keep_colors() == kept


def test_postcss_prunes_between_inlining_and_prefixing() -> None:
    config = PortalThemePlugin().get_static_assets()
    assert [str(path) for path, _ in config] == ["postcss.config.js"]
    text = config[0][1]
    assert frontend.PRUNE_SCRIPT.is_file() and frontend.PRUNE_SCRIPT.as_uri() in text
    order = [text.index(step) for step in ("postcssImport()", "unusedRadixCss(", "autoprefixer()")]
    assert order == sorted(order)
    assert 'keepColors: ["gray", "indigo", "slate"]' in text


def test_reflexs_vite_config_gets_the_vendor_chunk_first() -> None:
    vite = frontend_skeleton._compile_vite_config(get_config())
    changed = frontend.with_vendor_chunk(vite)
    assert changed.index('name: "vendor"') < changed.index('name: "reflex-env"')
    vendor = re.search(r'test: (/.*/), name: "vendor"', changed)
    assert vendor and "react-dom" in vendor.group(1)
    with pytest.raises(ValueError, match="no codeSplitting groups"):
        frontend.with_vendor_chunk("export default {}")


def test_the_vite_config_is_changed_at_each_compile() -> None:
    tasks = []
    PortalThemePlugin().pre_compile(add_save_task=None, add_modify_task=lambda *args: tasks.append(args),
                                    radix_themes_plugin=None, unevaluated_pages=[])
    assert tasks == [("vite.config.js", frontend.with_vendor_chunk), ("app/root.jsx", frontend.without_radix_loader)]


def test_the_app_root_loads_no_whole_radix_library() -> None:
    root = ('  const loaders = {\n    "@radix-ui/themes": () => import("@radix-ui/themes"),\n'
            '    "other": () => import("other"),\n  };\n')
    assert frontend.without_radix_loader(root) == '  const loaders = {\n    "other": () => import("other"),\n  };\n'
