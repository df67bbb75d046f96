// The aiops console's script. Pages work without it; it adds: refreshing live pages in place,
// charts (uPlot), and buttons that call the API with the API token. The token is asked for
// when the server answers 401, kept in sessionStorage (this tab only) and sent as the
// Authorization header, never put into a URL.
(function () {
  "use strict";
  var KEY = "aiops.apiToken";

  function token() {
    try { return sessionStorage.getItem(KEY); } catch (e) { return null; }
  }
  function authHeaders(extra) {
    var headers = extra || {};
    var t = token();
    if (t) headers.Authorization = "Bearer " + t;
    return headers;
  }
  function announce(text) {
    var region = document.getElementById("announce");
    if (region) region.textContent = text;
  }

  // Opens the token dialog; resolves true when a token was saved.
  function askToken(reason) {
    var dialog = document.getElementById("token-dialog");
    if (!dialog || typeof dialog.showModal !== "function") {
      var typed = window.prompt(reason || "API token");
      if (typed) { sessionStorage.setItem(KEY, typed.trim()); return Promise.resolve(true); }
      return Promise.resolve(false);
    }
    var input = dialog.querySelector("#token-input");
    input.value = "";
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function onClose() {
        dialog.removeEventListener("close", onClose);
        if (dialog.returnValue === "save" && input.value.trim()) {
          sessionStorage.setItem(KEY, input.value.trim());
          announce("API token saved for this tab.");
          resolve(true);
        } else {
          if (dialog.returnValue === "forget") { sessionStorage.removeItem(KEY); announce("API token forgotten."); }
          resolve(false);
        }
      });
      dialog.showModal();
      input.focus();
    });
  }

  // Sends a request (with a JSON body if given) with the token; on 401 asks for the token
  // once and retries.
  function send(method, path, body) {
    var go = function () {
      var headers = authHeaders({ Accept: "application/json" });
      if (body !== undefined) headers["Content-Type"] = "application/json";
      return fetch(path, { method: method, headers: headers, credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body) });
    };
    return go().then(function (response) {
      if (response.status !== 401) return response;
      return askToken("This server needs its API token.").then(function (saved) {
        return saved ? go() : response;
      });
    });
  }

  function errorOf(response) {
    return response.json().then(function (body) { return body && body.error ? body.error : response.statusText; },
      function () { return response.statusText; });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[data-action-path]") : null;
    if (button) {
      var question = button.getAttribute("data-confirm");
      if (question && !window.confirm(question)) return;
      var template = button.getAttribute("data-body");
      var body = template ? JSON.parse(template) : undefined;
      var field = button.getAttribute("data-ask-field");
      if (field) {
        var answer = window.prompt(button.getAttribute("data-ask-question") || field);
        if (!answer || !answer.trim()) return;
        body = body || {};
        body[field] = answer.trim();
      }
      var endsIn = button.getAttribute("data-ends-in-secs");
      if (endsIn) {
        body = body || {};
        body.ends_at = new Date(Date.now() + Number(endsIn) * 1000).toISOString();
      }
      button.disabled = true;
      send(button.getAttribute("data-action-method") || "POST", button.getAttribute("data-action-path"), body)
        .then(function (response) {
          if (response.ok) { announce(button.textContent.trim() + ": done."); return refresh(true); }
          return errorOf(response).then(function (message) { announce(message); window.alert(message); });
        })
        .catch(function (error) { window.alert(String(error)); })
        .then(function () { button.disabled = false; });
      return;
    }
    if (event.target.closest && event.target.closest("[data-token-button]")) askToken();
  });

  // Replaces the main content with a fresh copy of the page.
  function refresh(force) {
    var main = document.getElementById("main");
    if (!main) return Promise.resolve();
    if (!force && (document.hidden || main.querySelector("details[open]") || document.querySelector("dialog[open]") ||
        (document.activeElement && main.contains(document.activeElement) && document.activeElement.tagName === "INPUT"))) {
      return Promise.resolve();
    }
    return fetch(window.location.href, { headers: authHeaders({ Accept: "text/html" }), credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 401) return askToken().then(function () { return null; });
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("main");
        if (!fresh) return;
        main.innerHTML = fresh.innerHTML;
        drawCharts();
      })
      .catch(function () { /* offline for a moment: try again at the next tick */ });
  }

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function drawChart(spec, target) {
    if (!window.uPlot || !spec || !spec.x || spec.x.length === 0) return;
    var colours = ["--s1", "--s2", "--s3", "--s4", "--s5"].map(function (v) { return cssVar(v, "#0b5cad"); });
    var fg = cssVar("--fg", "#1b1f24"), muted = cssVar("--muted", "#5b6470"), grid = cssVar("--line", "#d8dde3");
    var lit = cssVar("--lit", "#cf222e");
    var data = [spec.x];
    var series = [{ label: "time (UTC)" }];
    spec.lines.forEach(function (line, i) {
      data.push(line.values);
      series.push({ label: line.label, stroke: colours[i % colours.length], width: 2, spanGaps: false,
        value: function (u, v) { return v == null ? "–" : v.toFixed(1) + " " + spec.unit; } });
    });
    var bands = [];
    if (spec.band) {
      var n = spec.x.length, band = "rgba(127,127,127,0.18)";
      data.push(new Array(n).fill(spec.band.high));
      series.push({ label: spec.band.high_label, stroke: muted, width: 1, dash: [4, 4],
        points: { show: false }, fill: spec.band.low_label ? undefined : band });
      if (spec.band.low_label) {
        data.push(new Array(n).fill(spec.band.low));
        series.push({ label: spec.band.low_label, stroke: muted, width: 1, dash: [4, 4], points: { show: false } });
        bands.push({ series: [data.length - 2, data.length - 1], fill: band });
      }
    }
    var axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
    var width = Math.max(280, target.clientWidth || target.parentNode.clientWidth || 600);
    var options = {
      width: width, height: 220, series: series, bands: bands,
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(max || 1, spec.band ? spec.band.high * 1.2 : 0) * 1.05]; } } },
      axes: [Object.assign({}, axis), Object.assign({ values: function (u, ticks) { return ticks.map(function (t) { return t + " " + spec.unit; }); }, size: 64 }, axis)],
      legend: { live: true },
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      hooks: { draw: [function (u) {
        var ctx = u.ctx;
        (spec.marks || []).forEach(function (mark) {
          var x = Math.round(u.valToPos(mark.at, "x", true));
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
          ctx.save();
          ctx.strokeStyle = lit; ctx.lineWidth = 2 * devicePixelRatio; ctx.setLineDash([6, 4]);
          ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
          ctx.fillStyle = lit; ctx.font = (12 * devicePixelRatio) + "px system-ui, sans-serif";
          ctx.fillText(mark.label, x + 4 * devicePixelRatio, u.bbox.top + 14 * devicePixelRatio);
          ctx.restore();
        });
      }] }
    };
    target.innerHTML = "";
    target.setAttribute("data-drawn", "true");
    return new uPlot(options, data, target);
  }

  function drawCharts() {
    var nodes = document.querySelectorAll("script.chart-data");
    Array.prototype.forEach.call(nodes, function (node) {
      var target = document.getElementById(node.getAttribute("data-for"));
      if (!target) return;
      try { drawChart(JSON.parse(node.textContent), target); } catch (e) { target.textContent = "Chart unavailable: " + e.message; }
    });
  }

  function start() {
    drawCharts();
    var main = document.getElementById("main");
    var every = main ? parseInt(main.getAttribute("data-refresh"), 10) : NaN;
    if (every > 0) setInterval(function () { refresh(false); }, every * 1000);
    var resizing;
    window.addEventListener("resize", function () { clearTimeout(resizing); resizing = setTimeout(drawCharts, 250); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
