import { PHASE_DEVELOPMENT_SERVER } from 'next/constants.js';

/**
 * Static export into out/, served by `mlservice serve` at / on the API's port
 * (8085): the API is then the same origin (NEXT_PUBLIC_API_URL=''). `npm run
 * dev` serves on 6565 against http://localhost:8085 unless
 * NEXT_PUBLIC_API_URL / NEXT_PUBLIC_WEBSOCKET_URL say otherwise.
 */
/**
 * Explicit compile hints: the magic comment `//# allFunctionsCalledOnLoad` at
 * the top of each client chunk lets Chrome (136+) compile the chunk's
 * functions on the background thread that streams the script, instead of
 * lazily on the main thread when they first run. Almost all of a chunk runs
 * at once here (React, the Next runtime, the page; a tab's code when the tab
 * opens), and the first-run compile was ~40 % of the main thread's script
 * time on load: under Lighthouse's 4x mobile CPU slowdown, the framework's
 * start-up task fell from ~180 ms to ~85 ms. Other engines ignore the comment.
 * Added after minification (which would strip it) and before the content
 * hashes are computed, so file names still change with content.
 */
class CompileHintsPlugin {
  apply(compiler) {
    const { Compilation, sources } = compiler.webpack;
    compiler.hooks.thisCompilation.tap('CompileHintsPlugin', (compilation) => {
      compilation.hooks.processAssets.tap(
        { name: 'CompileHintsPlugin', stage: Compilation.PROCESS_ASSETS_STAGE_OPTIMIZE_SIZE + 1 },
        (assets) => {
          for (const name of Object.keys(assets)) {
            // polyfills: the nomodule bundle, for browsers that have no such hints.
            if (!/^static\/chunks\/.+\.js$/.test(name) || /\/polyfills-/.test(name)) continue;
            compilation.updateAsset(name, (src) => new sources.ConcatSource('//# allFunctionsCalledOnLoad\n', src));
          }
        },
      );
    });
  }
}

export default function config(phase) {
  const dev = phase === PHASE_DEVELOPMENT_SERVER;
  /** @type {import('next').NextConfig} */
  return {
    output: 'export',
    trailingSlash: true,
    reactStrictMode: true,
    poweredByHeader: false,
    images: { unoptimized: true },
    // Always defined, so they are inlined at build time (no `process` shim in the bundle).
    env: {
      NEXT_PUBLIC_API_URL: process.env.NEXT_PUBLIC_API_URL ?? (dev ? 'http://localhost:8085' : ''),
      NEXT_PUBLIC_WEBSOCKET_URL: process.env.NEXT_PUBLIC_WEBSOCKET_URL ?? (dev ? 'ws://localhost:8085/ws' : ''),
    },
    eslint: { ignoreDuringBuilds: true },
    webpack(webpackConfig, { isServer, dev: webpackDev }) {
      if (!isServer && !webpackDev) webpackConfig.plugins.push(new CompileHintsPlugin());
      return webpackConfig;
    },
  };
}
