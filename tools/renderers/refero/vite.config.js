// Bundles the Refero page (refero/main.js) offline into refero/dist/: Refero 22 with React 18, react-redux and the
// Helsenorge design system, whose components import *.module.scss (hence Vite + sass). Run by scripts/setup.sh.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));

// Refero ships no UI texts: the host supplies them. Its own type declarations document the bokmål default of every
// text in a JSDoc comment above the field; those defaults are what a Helsenorge host shows, so the page uses them.
function referoResources() {
  const dts = readFileSync(join(here, '..', 'node_modules/@helsenorge/refero/types/util/resources.d.ts'), 'utf8');
  const out = {};
  for (const m of dts.matchAll(/\/\*\*\s*\n\s*\*\s*(.+?)\s*\n\s*\*\/\s*\n\s*(\w+)\??:\s*string;/g)) {
    out[m[2]] = m[1];
  }
  return out;
}

export default defineConfig({
  root: here,
  base: './',
  logLevel: 'warn',
  define: { __REFERO_RESOURCES__: JSON.stringify(referoResources()) },
  // The design system's SCSS uses @import and old built-ins: quiet their deprecation notes (not ours to fix).
  css: {
    preprocessorOptions: {
      scss: {
        quietDeps: true,
        silenceDeprecations: ['import', 'global-builtin', 'color-functions', 'legacy-js-api', 'if-function'],
      },
    },
  },
  resolve: {
    // Refero imports "@helsenorge/datepicker/components/DatePicker/" (trailing slash), which the datepicker's exports
    // map does not match under Vite's resolver; point it at the exported subpath.
    alias: [{ find: /^(@helsenorge\/datepicker\/components\/\w+)\/$/, replacement: '$1' }],
  },
  build: {
    outDir: join(here, 'dist'),
    emptyOutDir: true,
    chunkSizeWarningLimit: 10000,
    sourcemap: false,
    rolldownOptions: { checks: { pluginTimings: false } },
  },
});
