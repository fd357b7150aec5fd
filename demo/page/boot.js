// Runs first, as a classic script: sets up window.emaDemo and reports any
// failure on the page, including the ones that stop the page's modules from
// ever running (a script that does not load, a syntax error, a failed import).
(function () {
  'use strict';

  window.emaDemo = {
    status: 'idle',
    results: [],
    simd: null,
    build: null, // { build, threads, background, crossOriginIsolated } of a run's EMA
    backend: null,
    updateMs: { mean: NaN, last: NaN },
    error: null,
    posthoc: null, // the post-hoc EMA section's state, once main.js runs
  };

  function setStatus(status) {
    window.emaDemo.status = status;
    if (document.body) {
      document.body.dataset.status = status;
    } else {
      document.addEventListener('DOMContentLoaded', function () {
        document.body.dataset.status = window.emaDemo.status;
      });
    }
  }

  function messageOf(error) {
    if (error instanceof Error) return error.message || String(error);
    if (typeof error === 'string') return error;
    try {
      return JSON.stringify(error);
    } catch (_) {
      return String(error);
    }
  }

  function showError(message) {
    var box = document.getElementById('error');
    if (!box) {
      document.addEventListener('DOMContentLoaded', function () {
        showError(message);
      });
      return;
    }
    box.querySelector('[data-error-message]').textContent = message;
    box.hidden = false;
  }

  /** Marks the page as failed: data-status="error", the message shown and exposed. */
  window.emaDemoFail = function (error) {
    var message = messageOf(error);
    if (window.emaDemo.error === null) {
      window.emaDemo.error = message;
      // Also in the console, with its stack, for whoever is debugging.
      console.error('ema-wasm demo:', error);
    }
    setStatus('error');
    showError(message);
  };

  window.emaDemoSetStatus = setStatus;

  // Capture phase: load errors of <script> and <link> elements do not bubble.
  window.addEventListener(
    'error',
    function (event) {
      var target = event.target;
      if (target && target !== window && (target.src || target.href)) {
        window.emaDemoFail('Could not load ' + (target.src || target.href));
      } else {
        window.emaDemoFail(event.error || event.message || 'Unknown error');
      }
    },
    true,
  );
  window.addEventListener('unhandledrejection', function (event) {
    window.emaDemoFail(event.reason);
  });
})();
