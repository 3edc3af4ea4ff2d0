/* A PostCSS plugin (run by Vite at build, see cf_portal/frontend.py) that leaves out of Radix Themes' stylesheet
 * what the portal never shows: the dark theme, the colour scales no page uses, and the rules of components no
 * page imports. Radix's whole stylesheet is about 800 KB; the first paint waits for it.
 *
 * What counts as used is read from the compiled app itself (.web/app, .web/app_components, .web/utils,
 * .web/components):
 * - a component: a name imported from "@radix-ui/themes"; its module and the modules it imports name the
 *   `rt-Xxx` classes it renders, and only rules whose component classes are all among those are kept;
 * - a colour: the theme's accent and gray (`keepColors`) and any Radix colour written as a string ("red") or a
 *   variable (`--red-9`) in the compiled app.
 * Modifier classes (`rt-variant-soft`, `rt-r-size-2`) are kept: Radix builds them at run time from props.
 */

import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

const COMPONENT_CLASS = /\.rt-[A-Z][A-Za-z]*/g;
const IMPORT_FROM_THEMES = /import\s*\{([^}]*)\}\s*from\s*["']@radix-ui\/themes["']/g;
const RELATIVE_IMPORT = /from\s*["'](\.{1,2}\/[^"']+)["']/g;
const DARK = /(^|[\s,(>+~])\.dark(-theme)?(?![\w-])/;

function* sourceFiles(folder) {
  if (!existsSync(folder)) return;
  for (const name of readdirSync(folder)) {
    const path = join(folder, name);
    if (statSync(path).isDirectory()) yield* sourceFiles(path);
    else if (/\.(jsx?|mjs)$/.test(name)) yield path;
  }
}

const kebab = (name) => name.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();

/** The `rt-Xxx` classes rendered by the Radix Themes components `names` (and every module they import). */
export function componentClasses(names, themesDir) {
  const esm = join(themesDir, "dist", "esm", "components");
  const seen = new Set();
  const classes = new Set();
  const visit = (file) => {
    if (seen.has(file) || !existsSync(file)) return;
    seen.add(file);
    const code = readFileSync(file, "utf8");
    for (const match of code.matchAll(/rt-[A-Z][A-Za-z]*/g)) classes.add("." + match[0]);
    for (const match of code.matchAll(RELATIVE_IMPORT)) visit(resolve(dirname(file), match[1]));
  };
  for (const name of names) visit(join(esm, kebab(name) + ".js"));
  return classes;
}

/** The names the compiled app imports from "@radix-ui/themes", and the whole text of its sources. */
export function appUsage(webDir) {
  const names = new Set();
  let text = "";
  for (const folder of ["app", "app_components", "utils", "components"]) {
    for (const file of sourceFiles(join(webDir, folder))) {
      const code = readFileSync(file, "utf8");
      text += code;
      for (const match of code.matchAll(IMPORT_FROM_THEMES)) {
        for (const part of match[1].split(",")) {
          const name = part.trim().split(/\s+as\s+/)[0].trim();
          if (name) names.add(name);
        }
      }
    }
  }
  return { names, text };
}

export function usedColors(allColors, keepColors, appText) {
  return new Set(allColors.filter((color) => keepColors.includes(color)
    || new RegExp(`["'\`]${color}["'\`]|--${color}-`).test(appText)));
}

/** Prunes `root` (a PostCSS root) in place; returns what was dropped, for the build log. */
export function prune(root, { classes, colors, allColors }) {
  const unused = allColors.filter((color) => !colors.has(color));
  const unusedColor = unused.length
    ? new RegExp(`(data-(accent|gray)-color=['"]?(${unused.join("|")})['"]?\\])`) : null;
  const unusedVariable = unused.length ? new RegExp(`^--(${unused.join("|")})-`) : null;
  let rules = 0;
  let declarations = 0;
  const keepSelector = (selector) => {
    if (DARK.test(selector) && !/:not\([^)]*\.dark/.test(selector)) return false;
    if (unusedColor && unusedColor.test(selector)) return false;
    return (selector.match(COMPONENT_CLASS) || []).every((name) => classes.has(name));
  };
  root.walkRules((rule) => {
    if (rule.parent && rule.parent.type === "atrule" && /keyframes/.test(rule.parent.name)) return;
    const kept = rule.selectors.filter(keepSelector);
    if (kept.length === 0) {
      rule.remove();
      rules += 1;
      return;
    }
    if (kept.length < rule.selectors.length) rule.selectors = kept;
    if (unusedVariable) {
      rule.walkDecls((decl) => {
        if (unusedVariable.test(decl.prop)) {
          decl.remove();
          declarations += 1;
        }
      });
      if (rule.nodes.length === 0) rule.remove();
    }
  });
  // At-rules left empty (@media, @supports, @layer blocks whose rules all went).
  let emptied = true;
  while (emptied) {
    emptied = false;
    root.walkAtRules((atRule) => {
      if (atRule.nodes && atRule.nodes.length === 0) {
        atRule.remove();
        emptied = true;
      }
    });
  }
  return { rules, declarations };
}

/** The PostCSS plugin: `unusedRadixCss({webDir, keepColors})`. */
export default function unusedRadixCss({ webDir = process.cwd(), keepColors = [] } = {}) {
  return {
    postcssPlugin: "cf-portal-unused-radix-css",
    OnceExit(root) {
      const themesDir = join(webDir, "node_modules", "@radix-ui", "themes");
      // Only the stylesheet that holds Radix Themes (the root one, after postcss-import inlined it).
      if (!existsSync(themesDir) || !root.toString().includes(".radix-themes")) return;
      const allColors = readdirSync(join(themesDir, "tokens", "colors")).map((name) => name.replace(/\.css$/, ""));
      const usage = appUsage(webDir);
      const classes = componentClasses(usage.names, themesDir);
      const colors = usedColors(allColors, keepColors, usage.text);
      const dropped = prune(root, { classes, colors, allColors });
      if (process.env.CF_RADIX_CSS_REPORT) {
        console.log(`unused Radix CSS: ${dropped.rules} rules and ${dropped.declarations} colour variables left `
          + `out; components ${[...usage.names].sort().join(" ")}; colours ${[...colors].sort().join(" ")}`);
      }
    },
  };
}
unusedRadixCss.postcss = true;
