/* accessaudit report: filter, sort and page the worklist and findings tables.
 *
 * Data comes only from <script type="application/json"> blocks, read with textContent and
 * JSON.parse. The DOM is built with createElement/textContent only: directory text never
 * becomes markup. Class names come from fixed sets (severity, status, org_class from the
 * report), never from raw data. The page works without this script: the server renders the
 * first page of each table, and this script re-renders it with controls. */
(function () {
  "use strict";

  var SEV_RANK = { critical: 4, high: 3, medium: 2, low: 1, info: 0 };
  var HAS = Object.prototype.hasOwnProperty;
  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

  function readJSON(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function add(parent) {
    for (var i = 1; i < arguments.length; i += 1) {
      var child = arguments[i];
      if (child === null || child === undefined) {
        continue;
      }
      parent.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return parent;
  }

  /* Embedded tables. A block holds either a JSON string, base64 of the gzip-compressed
   * packed columnar payload (accessaudit/report/embed.py: a JSON header, its integer arrays
   * in a binary section read here as typed arrays), decoded with the browser's own
   * DecompressionStream (no network, nothing the CSP must allow), or that payload as JSON, or
   * (a site template's |tojson) row-wise {columns, rows}. A table is {n, names, cols}: each
   * column either {dict, codes} (dictionary-coded), {values}, or a list column {lengths, items,
   * offsets}. Rows are never built up front: cell(column, i) reads one value. */
  var FORMAT = "columnar-1";

  function base64Bytes(text) {
    if (typeof Uint8Array.fromBase64 === "function") {
      return Uint8Array.fromBase64(text);
    }
    var bin = window.atob(text);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i += 1) {
      out[i] = bin.charCodeAt(i);
    }
    return out;
  }

  var TYPED = { u8: Uint8Array, u16: Uint16Array, u32: Uint32Array, i32: Int32Array };

  /* embed.pack's bytes: u32 header length, the header JSON, padding to 4, the arrays. */
  function unpack(buffer) {
    var size = new DataView(buffer).getUint32(0, true);
    var head = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, size)));
    var base = 4 + size + ((4 - ((4 + size) % 4)) % 4);
    function typed(ref) {
      if (!HAS.call(TYPED, ref[0])) {
        throw new Error("embedded data of an unknown array type");
      }
      return new TYPED[ref[0]](buffer, base + ref[1], ref[2]);
    }
    // a column of strings: one UTF-8 text (decoded once) and each string's UTF-16 length
    function strings(ref) {
      var text = new TextDecoder("utf-8", { ignoreBOM: true }).decode(
        new Uint8Array(buffer, base + ref[0], ref[1]));
      var lengths = typed(ref[2]);
      var out = new Array(lengths.length);
      for (var i = 0, at = 0; i < lengths.length; i += 1) {
        out[i] = text.substring(at, at + lengths[i]);
        at += lengths[i];
      }
      return out;
    }
    function resolve(c) {
      ["codes", "lengths", "values"].forEach(function (key) {
        var ref = c[key];
        if (ref && ref.bin) {
          c[key] = typed(ref.bin);
        } else if (ref && ref.text) {
          c[key] = strings(ref.text);
        }
      });
      if (c.items) {
        resolve(c.items);
      }
    }
    head.columns.forEach(resolve);
    return head;
  }

  function prepareColumn(c) {
    if (c.lengths) {
      var offsets = new Int32Array(c.lengths.length + 1);
      for (var i = 0; i < c.lengths.length; i += 1) {
        offsets[i + 1] = offsets[i] + c.lengths[i];
      }
      c.offsets = offsets;
      prepareColumn(c.items);
    }
    return c;
  }

  function makeTable(payload) {
    var cols = {};
    var names = [];
    if (payload.format === undefined && payload.rows) {
      payload.columns.forEach(function (name, k) {
        names.push(name);
        cols[name] = { values: payload.rows.map(function (r) { return r[k]; }) };
      });
      return { n: payload.rows.length, names: names, cols: cols };
    }
    if (payload.format !== FORMAT) {
      throw new Error("embedded data of an unknown format");
    }
    payload.columns.forEach(function (c) {
      names.push(c.name);
      cols[c.name] = prepareColumn(c);
    });
    return { n: payload.n, names: names, cols: cols };
  }

  function loadTable(id) {
    var node = document.getElementById(id);
    if (!node) {
      return Promise.resolve(null);
    }
    var value = JSON.parse(node.textContent);
    if (typeof value !== "string") {
      return Promise.resolve(makeTable(value));
    }
    if (typeof DecompressionStream !== "function") {
      return Promise.reject(new Error("this browser has no DecompressionStream"));
    }
    var stream = new Blob([base64Bytes(value)]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).arrayBuffer().then(function (buffer) {
      return makeTable(unpack(buffer));
    });
  }

  function cell(c, i) {
    if (c.codes) {
      return c.dict[c.codes[i]];
    }
    if (c.values) {
      return c.values[i];
    }
    var out = [];
    for (var k = c.offsets[i]; k < c.offsets[i + 1]; k += 1) {
      out.push(cell(c.items, k));
    }
    return out;
  }

  function rowObject(table, i) {
    var obj = {};
    for (var k = 0; k < table.names.length; k += 1) {
      obj[table.names[k]] = cell(table.cols[table.names[k]], i);
    }
    return obj;
  }

  /* Per row of column c, does test(value) hold? A dictionary-coded column is tested once per
   * distinct value. Returns a function of the row index. */
  function columnTest(c, test) {
    if (c.codes) {
      var hit = c.dict.map(function (v) { return Boolean(test(v)); });
      var codes = c.codes;
      return function (i) {
        return hit[codes[i]];
      };
    }
    var values = c.values;
    return function (i) {
      return Boolean(test(values[i]));
    };
  }

  function lower(v) {
    return v === null || v === undefined ? "" : String(v).toLowerCase();
  }

  /* The lower-cased text of a plain column (of transform(value) under `tag`), built once. */
  function lowered(c, tag, transform) {
    var key = "lower" + tag;
    if (!c[key]) {
      c[key] = Array.prototype.map.call(c.values, function (v) {
        return lower(transform ? transform(v) : v);
      });
    }
    return c[key];
  }

  /* Does the query occur in the column's text? */
  function textTest(c, query, tag, transform) {
    if (c.codes || !c.values) {
      return columnTest(c, function (v) {
        return lower(transform ? transform(v) : v).indexOf(query) !== -1;
      });
    }
    var low = lowered(c, tag || "", transform);
    return function (i) {
      return low[i].indexOf(query) !== -1;
    };
  }

  /* Ranks of the values of column c (ties share a rank) under cmp: a function of the row. */
  function rankTest(c, cmp, tag, transform) {
    var key = "rank" + tag;
    var values = c.codes ? c.dict : c.values;
    if (!c[key]) {
      var keys = transform ? Array.prototype.map.call(values, transform) : values;
      c[key] = ranks(keys, cmp);
    }
    var r = c[key];
    if (c.codes) {
      var codes = c.codes;
      return function (i) {
        return r[codes[i]];
      };
    }
    return function (i) {
      return r[i];
    };
  }

  function ranks(keys, cmp) {
    var order = new Array(keys.length);
    for (var i = 0; i < keys.length; i += 1) {
      order[i] = i;
    }
    order.sort(function (a, b) {
      return cmp(keys[a], keys[b]) || a - b;
    });
    var out = new Int32Array(keys.length);
    var at = 0;
    for (var k = 0; k < order.length; k += 1) {
      if (k > 0 && cmp(keys[order[k - 1]], keys[order[k]]) !== 0) {
        at += 1;
      }
      out[order[k]] = at;
    }
    return out;
  }

  /* `indexes` ordered by rankOf(i) (descending when dir is -1), ties in index order: one
   * numeric sort of rank * total + index, no comparator. */
  function sortedBy(indexes, rankOf, dir, total) {
    var m = indexes.length;
    var rk = new Int32Array(m);
    var top = 0;
    for (var j = 0; j < m; j += 1) {
      rk[j] = rankOf(indexes[j]);
      if (rk[j] > top) {
        top = rk[j];
      }
    }
    var keys = new Float64Array(m);
    for (j = 0; j < m; j += 1) {
      keys[j] = (dir === -1 ? top - rk[j] : rk[j]) * total + indexes[j];
    }
    keys.sort();
    var out = new Array(m);
    for (j = 0; j < m; j += 1) {
      out[j] = keys[j] % total;
    }
    return out;
  }

  function rank(severity) {
    return HAS.call(SEV_RANK, severity) ? SEV_RANK[severity] : -1;
  }

  function sevChip(severity) {
    return el("span", "chip " + (HAS.call(SEV_RANK, severity) ? "sev-" + severity : "sev-unknown"), severity);
  }

  function makeOrgChip(orgClass) {
    return function (org) {
      var cls = HAS.call(orgClass, org) ? orgClass[org] : "org-other";
      return el("span", "chip org " + cls, org);
    };
  }

  function hiddenFlag(flag) {
    if (!flag) {
      return null;
    }
    var chip = el("span", "chip warn", "hidden characters");
    chip.title = "Contains invisible or bidirectional control characters, shown as [U+XXXX]. Check before acting.";
    return add(document.createDocumentFragment(), " ", chip);
  }

  function td() {
    var cell = el("td");
    add.apply(null, [cell].concat(Array.prototype.slice.call(arguments)));
    return cell;
  }

  /* A filterable, sortable, paged table over `data` (a table from loadTable). Only the rows
   * of the current page are ever built (cfg.prepare(rowObject)) and put in the DOM; filters,
   * selects and sorts work on the columns themselves: a dictionary-coded column (severity,
   * rule, status, force, ...) is tested or ranked once per distinct value, a text column is
   * lower-cased once (in idle time after the first paint) and searched with indexOf, and a
   * sort is one numeric sort of a Float64Array. The table carries aria-rowcount (every
   * filtered row + the header) and each rendered row its aria-rowindex, so a screen reader
   * announces "row 5,001 of 338,519" on the page that holds it.
   * cfg: prefix, data, pageSize, prepare(row) (optional), renderRow(row) -> <tr>,
   *      search: [{col, tag?, transform?} | {ref, fields} | {path, fields}],
   *      refs: {hits(fields, query) -> fn(object index), rank(column) -> fn(i)},
   *      selects: [{id, col, value(v)?}], sorts: {data-key: {col} | {ref}} (else col = key),
   *      groupKey(row) (optional), renderGroup(row, first) -> <tr>,
   *      orderKey() (optional) -> null or {col, tag, transform}: the grouped order when not
   *      sorted.
   * Returns {refresh, setPrinting, table, warm} (or null when the table is not in the page);
   * setPrinting(true) renders every filtered row (a printout has no pager), false pages again. */
  function setupTable(cfg) {
    var prefix = cfg.prefix;
    var data = cfg.data;
    var cols = data.cols;
    var total = data.n;
    var built = {};
    var body = document.getElementById(prefix + "-body");
    var table = document.getElementById(prefix + "-table");
    var controls = document.getElementById(prefix + "-controls");
    if (!body || !table || !controls) {
      return null;
    }
    var filter = document.getElementById(prefix + "-filter");
    var statusText = document.getElementById(prefix + "-status");
    var pageText = document.getElementById(prefix + "-page");
    var prev = document.getElementById(prefix + "-prev");
    var next = document.getElementById(prefix + "-next");
    var selects = cfg.selects.map(function (s) {
      return { node: document.getElementById(s.id), col: cols[s.col], value: s.value };
    });
    var identity = new Array(total);
    for (var n = 0; n < total; n += 1) {
      identity[n] = n;
    }

    function row(i) {
      var r = built[i];
      if (r === undefined) {
        r = rowObject(data, i);
        if (cfg.prepare) {
          cfg.prepare(r);
        }
        built[i] = r;
      }
      return r;
    }

    function searchTest(query) {
      var tests = cfg.search.map(function (term) {
        if (term.ref) {
          return columnTest(cols[term.ref], cfg.refs.hits(term.fields, query));
        }
        if (term.path) {
          var path = cols[term.path];
          var hit = cfg.refs.hits(term.fields, query);
          if (!path.offsets) {
            return function (i) {
              return (path.values[i] || []).some(hit);
            };
          }
          var hop = columnTest(path.items, hit);
          var offsets = path.offsets;
          return function (i) {
            for (var k = offsets[i]; k < offsets[i + 1]; k += 1) {
              if (hop(k)) {
                return true;
              }
            }
            return false;
          };
        }
        return textTest(cols[term.col], query, term.tag, term.transform);
      });
      return function (i) {
        for (var t = 0; t < tests.length; t += 1) {
          if (tests[t](i)) {
            return true;
          }
        }
        return false;
      };
    }

    function rankOf(key, type) {
      var spec = (cfg.sorts && cfg.sorts[key]) || { col: key };
      if (spec.ref) {
        return cfg.refs.rank(cols[spec.ref]);
      }
      var cmp;
      if (type === "severity") {
        cmp = function (x, y) {
          return rank(x) - rank(y);
        };
      } else if (type === "number") {
        cmp = function (x, y) {
          return Number(x) - Number(y);
        };
      } else {
        cmp = function (x, y) {
          return collator.compare(String(x), String(y));
        };
      }
      return rankTest(cols[spec.col], cmp, type);
    }

    var state = { query: "", sortKey: null, sortType: "", sortDir: 1, page: 0 };
    var view = identity;
    var printing = false;
    var headers = Array.prototype.slice.call(table.querySelectorAll("thead th[data-key]"));
    var headRow = table.querySelector("thead tr");
    if (headRow) {
      headRow.setAttribute("aria-rowindex", "1");
    }

    function compute() {
      var tests = [];
      if (state.query) {
        tests.push(searchTest(state.query));
      }
      selects.forEach(function (s) {
        var wanted = s.node ? s.node.value : "";
        if (wanted && s.col) {
          tests.push(columnTest(s.col, function (v) {
            return String(s.value ? s.value(v) : v) === wanted;
          }));
        }
      });
      var out = identity;
      if (tests.length) {
        out = [];
        for (var i = 0; i < total; i += 1) {
          var keep = true;
          for (var t = 0; t < tests.length && keep; t += 1) {
            keep = tests[t](i);
          }
          if (keep) {
            out.push(i);
          }
        }
      }
      if (state.sortKey) {
        out = sortedBy(out, rankOf(state.sortKey, state.sortType), state.sortDir, total);
      } else {
        var order = cfg.orderKey ? cfg.orderKey() : null;
        if (order) {
          out = sortedBy(out, rankTest(cols[order.col], collator.compare, order.tag, order.transform), 1, total);
        }
      }
      view = out;
    }

    function render() {
      var size = cfg.pageSize;
      var pages = Math.max(1, Math.ceil(view.length / size));
      if (state.page >= pages) {
        state.page = pages - 1;
      }
      var start = printing ? 0 : state.page * size;
      var end = printing ? view.length : Math.min(view.length, start + size);
      var fragment = document.createDocumentFragment();
      var lastGroup = null;
      for (var k = start; k < end; k += 1) {
        var current = row(view[k]);
        if (cfg.groupKey && !state.sortKey) {
          var group = cfg.groupKey(current);
          if (group !== lastGroup) {
            var continued = k === start && k > 0 && cfg.groupKey(row(view[k - 1])) === group;
            fragment.appendChild(cfg.renderGroup(current, !continued));
            lastGroup = group;
          }
        }
        var tr = cfg.renderRow(current);
        tr.setAttribute("aria-rowindex", String(k + 2));
        fragment.appendChild(tr);
      }
      while (body.firstChild) {
        body.removeChild(body.firstChild);
      }
      body.appendChild(fragment);
      table.setAttribute("aria-rowcount", String(view.length + 1));
      var filtered = view.length !== total;
      if (statusText) {
        statusText.textContent =
          view.length === 0
            ? "No matching rows" + (filtered ? " (of " + total + ")" : "")
            : "Showing " + (start + 1) + "–" + end + " of " + view.length +
              (filtered ? " (filtered from " + total + ")" : "");
      }
      if (pageText) {
        pageText.textContent = "Page " + (state.page + 1) + " of " + pages;
      }
      if (prev) {
        prev.disabled = state.page === 0;
      }
      if (next) {
        next.disabled = end >= view.length;
      }
    }

    function refresh() {
      state.page = 0;
      compute();
      render();
    }

    var timer = null;
    var delay = total > 5000 ? 150 : 0;
    if (filter) {
      filter.addEventListener("input", function () {
        if (timer !== null) {
          window.clearTimeout(timer);
        }
        timer = window.setTimeout(function () {
          timer = null;
          state.query = filter.value.trim().toLowerCase();
          refresh();
        }, delay);
      });
    }
    selects.forEach(function (s) {
      if (s.node) {
        s.node.addEventListener("change", refresh);
      }
    });
    if (prev) {
      prev.addEventListener("click", function () {
        state.page = Math.max(0, state.page - 1);
        render();
      });
    }
    if (next) {
      next.addEventListener("click", function () {
        state.page += 1;
        render();
      });
    }

    // Sorting: click a header for ascending, again for descending, a third time for the
    // report's own order (grouped).
    headers.forEach(function (th) {
      var button = el("button", "sort", th.textContent);
      button.type = "button";
      while (th.firstChild) {
        th.removeChild(th.firstChild);
      }
      th.appendChild(button);
      th.setAttribute("aria-sort", "none");
      button.addEventListener("click", function () {
        var key = th.getAttribute("data-key");
        var type = th.getAttribute("data-type") || "text";
        if (state.sortKey !== key) {
          state.sortKey = key;
          state.sortType = type;
          // worst / largest first is the useful default for severity and counts
          state.sortDir = type === "text" ? 1 : -1;
        } else if (state.sortDir === (type === "text" ? 1 : -1)) {
          state.sortDir = -state.sortDir;
        } else {
          state.sortKey = null;
        }
        headers.forEach(function (other) {
          var sorted = state.sortKey !== null && other === th;
          other.setAttribute(
            "aria-sort",
            sorted ? (state.sortDir === 1 ? "ascending" : "descending") : "none"
          );
        });
        refresh();
      });
    });

    controls.hidden = false;
    var more = document.getElementById(prefix + "-more");
    if (more) {
      more.hidden = true;
    }
    refresh();
    // What the first filter would otherwise build: the lower-cased text columns.
    function warm() {
      return cfg.search
        .filter(function (term) {
          return term.col && cols[term.col] && cols[term.col].values;
        })
        .map(function (term) {
          return function () {
            lowered(cols[term.col], term.tag || "", term.transform);
          };
        });
    }
    function setPrinting(on) {
      if (printing !== on) {
        printing = on;
        render();
      }
    }
    return { refresh: refresh, setPrinting: setPrinting, table: table, warm: warm };
  }

  /* Views: #view-officer, #view-worklist, #view-evidence show one; no hash opens the officer's
     view (the verdict and the summary first); #all or any other anchor shows all. */
  function setupViews() {
    var views = Array.prototype.slice.call(document.querySelectorAll("div.view[data-view]"));
    var links = Array.prototype.slice.call(document.querySelectorAll("nav.toc a[data-view]"));
    function show() {
      var hash = window.location.hash || "";
      var name = hash.indexOf("#view-") === 0 ? hash.slice(6) : hash === "" ? "officer" : "";
      if (name && !views.some(function (v) { return v.getAttribute("data-view") === name; })) {
        name = "";
      }
      views.forEach(function (v) {
        v.hidden = name !== "" && v.getAttribute("data-view") !== name;
      });
      links.forEach(function (a) {
        if (a.getAttribute("data-view") === name) {
          a.setAttribute("aria-current", "page");
        } else {
          a.removeAttribute("aria-current");
        }
      });
      document.documentElement.setAttribute("data-view", name || "all");
      if (name || hash === "#all") {
        window.scrollTo(0, 0);  // a view starts at the top: the header carries its banners
      }
    }
    window.addEventListener("hashchange", show);
    show();
  }

  var SYSTEM_CLASS = { ad: "sys-ad", cloud: "sys-cloud", app: "sys-app", register: "sys-register" };
  var SYSTEM_LABEL = {
    ad: "AD-mastered: change it in Active Directory",
    cloud: "cloud-only: change it in Entra ID",
    app: "application: change it in the application",
    register: "exceptions register: renew or remove the entry"
  };
  function sysChip(system) {
    return el("span", "chip sys " + (HAS.call(SYSTEM_CLASS, system) ? SYSTEM_CLASS[system] : "sys-other"), system);
  }

  var CHANGES = { "new": 1, regressed: 1, persisting: 1 };
  function changeChip(change) {
    return HAS.call(CHANGES, change) ? el("span", "chip change change-" + change, change) : null;
  }

  function copyText(text, button) {
    function done(ok) {
      button.textContent = ok ? "Copied" : "Select and copy";
      window.setTimeout(function () {
        button.textContent = "Copy";
      }, 1500);
    }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(
        function () {
          done(true);
        },
        function () {
          done(false);
        }
      );
    } else {
      done(false);
    }
  }

  function commandBlock(command) {
    var wrap = el("div", "cmd-wrap");
    var pre = el("pre", "cmd");
    pre.appendChild(el("code", null, command));
    var button = el("button", "copy", "Copy");
    button.type = "button";
    button.addEventListener("click", function () {
      copyText(command, button);
    });
    return add(wrap, button, pre);
  }

  function pathList(hops, partial, orgChip) {
    if (!hops || hops.length === 0) {
      return el("span", "muted", "—");
    }
    var list = el("ol", "path");
    hops.forEach(function (hop) {
      var kind = hop.kind === "account" || hop.kind === "group" ? hop.kind : "unknown";
      add(list, add(el("li", "hop hop-" + kind), el("span", "name", hop.name), " ", orgChip(hop.org)));
    });
    if (partial) {
      list.appendChild(el("li", "hop hop-gap", "intermediate groups not recorded"));
    }
    return list;
  }

  function evidenceList(items, conflict) {
    var frag = document.createDocumentFragment();
    if (items && items.length) {
      var list = el("ul", "evidence");
      items.forEach(function (item) {
        list.appendChild(el("li", null, item));
      });
      frag.appendChild(list);
    } else {
      frag.appendChild(el("span", "muted", "no attribution signal"));
    }
    if (conflict) {
      frag.appendChild(el("span", "chip warn", "conflicting signals"));
    }
    return frag;
  }

  function init() {
    var meta = readJSON("report-meta") || { rule_docs: {}, org_class: {}, page_size: 100 };
    var orgChip = makeOrgChip(meta.org_class || {});
    var docs = meta.rule_docs || {};
    var pageSize = Math.max(1, Number(meta.page_size) || 100);
    setupViews();
    // Until the tables are decoded the server-rendered first pages (and the no-script notes)
    // stay as they are; <html> gets the class "js" once the tables are live.
    Promise.all(["objects-data", "worklist-data", "findings-data"].map(loadTable)).then(
      function (loaded) {
        setupTables(loaded[0], loaded[1], loaded[2], docs, orgChip, pageSize);
        document.documentElement.className += " js";
      },
      function (error) {
        window.console.error("accessaudit report: the tables could not be decoded: " + error.message);
      }
    );
  }

  function setupTables(objectsData, actionsData, findingsData, docs, orgChip, pageSize) {
    // Rows name accounts and groups by index into one shared objects table.
    var objects = objectsData || { n: 0, names: [], cols: {} };
    var NO_OBJECT = { id: "", name: "—", secondary: "", kind: "", org: "", evidence: [], conflict: false };
    var built = [];
    function obj(index) {
      if (index === null || index === undefined || !(index >= 0 && index < objects.n)) {
        return NO_OBJECT;
      }
      return built[index] || (built[index] = rowObject(objects, index));
    }
    // Which objects' fields hold the query (one pass over the objects per query and field),
    // and the objects' order by name (one collation, the first time a table sorts by a name).
    var fieldHits = { query: null };
    var nameRank = null;
    var refs = {
      hits: function (fields, query) {
        if (fieldHits.query !== query) {
          fieldHits = { query: query };
        }
        var any = new Uint8Array(objects.n);
        var none = false;
        fields.forEach(function (f) {
          none = none || lower(NO_OBJECT[f]).indexOf(query) !== -1;
          if (!HAS.call(fieldHits, "f-" + f)) {
            var hits = new Uint8Array(objects.n);
            if (objects.cols[f]) {
              var test = textTest(objects.cols[f], query, "");
              for (var i = 0; i < objects.n; i += 1) {
                hits[i] = test(i) ? 1 : 0;
              }
            }
            fieldHits["f-" + f] = hits;
          }
          var h = fieldHits["f-" + f];
          for (var j = 0; j < objects.n; j += 1) {
            any[j] |= h[j];
          }
        });
        return function (ref) {
          return ref === null || ref === undefined || !(ref >= 0 && ref < objects.n) ? none : any[ref] === 1;
        };
      },
      rank: function (column) {
        if (nameRank === null) {
          var names = new Array(objects.n + 1);
          for (var i = 0; i < objects.n; i += 1) {
            names[i] = String(obj(i).name);
          }
          names[objects.n] = NO_OBJECT.name;
          nameRank = ranks(names, collator.compare);
        }
        return function (i) {
          var ref = cell(column, i);
          return nameRank[ref === null || ref === undefined || !(ref >= 0 && ref < objects.n) ? objects.n : ref];
        };
      }
    };
    function titleOf(ruleId) {
      return HAS.call(docs, ruleId) ? docs[ruleId].title : "";
    }

    var tables = [];  // what setupTable returned: all rows are rendered for printing
    if (actionsData) {
      var groupBy = document.getElementById("worklist-groupby");
      function bySystem() {
        return groupBy !== null && groupBy.value === "system";
      }
      var worklist = setupTable({
        prefix: "worklist",
        data: actionsData,
        pageSize: pageSize,
        refs: refs,
        prepare: function (a) {
          var group = obj(a.group);
          var member = obj(a.member);
          a.group_id = group.id;
          a.group_name = group.name;
          a.member_id = member.id;
          a.member_name = member.name;
          a.member_org = member.org;
          a.apply_state = a.apply ? "by hand" : "apply";
        },
        selects: [
          { id: "worklist-severity", col: "severity" },
          { id: "worklist-apply", col: "apply", value: function (v) { return v ? "by hand" : "apply"; } },
          { id: "worklist-org", col: "owning_org" },
          { id: "worklist-system", col: "system" }
        ],
        sorts: { member_name: { ref: "member" }, group_name: { ref: "group" } },
        orderKey: function () {
          return bySystem() ? { col: "system", tag: "system", transform: function (s) { return s || "~"; } } : null;
        },
        // the fields a filter searches (the text of any one of them holds the query)
        search: [
          { col: "action_id" }, { col: "kind" }, { col: "severity" }, { col: "owning_org" },
          { ref: "group", fields: ["name", "id"] }, { ref: "member", fields: ["name", "id", "org"] },
          { col: "summary" }, { col: "powershell" }, { col: "apply" }
        ],
        groupKey: function (a) {
          return (bySystem() ? a.system + "\n" : "") + a.owning_org + "\n" + a.group_id;
        },
        renderGroup: function (a, first) {
          var th = el("th");
          th.scope = "rowgroup";
          th.colSpan = 7;
          if (bySystem()) {
            var label = HAS.call(SYSTEM_LABEL, a.system) ? SYSTEM_LABEL[a.system] : "no system of record";
            add(th, a.system ? sysChip(a.system) : null, " ", el("span", "muted", label), " ");
          }
          add(th, orgChip(a.owning_org), " ", el("span", "name", a.group_name), " ",
            el("span", "muted", a.group_actions + " action(s), resolve " + a.group_resolves +
              (first ? "" : " (continued)")));
          return add(el("tr", "group-row"), th);
        },
        renderRow: function (a) {
          var member = td(el("span", "name", a.member_name));
          if (a.member_org) {
            add(member, " ", orgChip(a.member_org));
          }
          add(member, el("div", "muted", a.member_kind), hiddenFlag(a.hidden));
          var resolves = td(String(a.resolves));
          resolves.className = "num";
          var cmd = td(commandBlock(a.powershell));
          cmd.className = "cmd-cell";
          var kind = td(el("span", "kind", a.kind), " ");
          if (a.apply) {
            add(kind, el("span", "chip apply-manual", "by hand"), el("div", "apply-reason muted", a.apply));
          } else {
            add(kind, el("span", "chip apply-auto", "apply"));
          }
          add(kind, el("div", "summary", a.summary));
          return add(el("tr", "action-row"),
            td(sevChip(a.severity)),
            kind,
            member,
            td(el("span", "name", a.group_name), a.system ? " " : null, a.system ? sysChip(a.system) : null),
            td(orgChip(a.owning_org)),
            resolves,
            cmd);
        }
      });
      if (groupBy && worklist) {
        groupBy.addEventListener("change", worklist.refresh);
      }
      tables.push(worklist);
    }

    if (findingsData) {
      tables.push(setupTable({
        prefix: "findings",
        data: findingsData,
        pageSize: pageSize,
        refs: refs,
        prepare: function (f) {
          ["principal", "resource"].forEach(function (role) {
            var o = obj(f[role]);
            f[role + "_kind"] = o.kind;
            f[role + "_id"] = o.id;
            f[role + "_name"] = o.name;
            f[role + "_secondary"] = o.secondary;
            f[role + "_evidence"] = o.evidence;
            f[role + "_conflict"] = o.conflict;
          });
          f.path = (f.path || []).map(obj);
        },
        selects: [
          { id: "findings-severity", col: "severity" },
          { id: "findings-state", col: "status" },
          { id: "findings-change", col: "change" }
        ],
        sorts: { principal_name: { ref: "principal" }, resource_name: { ref: "resource" } },
        search: [
          { col: "finding_key" }, { col: "rule_id" }, { col: "rule_id", tag: "title", transform: titleOf },
          { col: "severity" }, { col: "status" },
          { ref: "principal", fields: ["name", "secondary", "id"] }, { col: "principal_org" },
          { ref: "resource", fields: ["name", "secondary", "id"] }, { col: "resource_org" },
          { col: "detail" }, { path: "path", fields: ["name"] }
        ],
        renderRow: function (f) {
          var doc = HAS.call(docs, f.rule_id) ? docs[f.rule_id] : { title: f.rule_id, rationale: "" };
          var statusChip = el("span", "chip " + (f.status === "open" ? "status-open" : "status-accepted"), f.status);
          var principal = td(el("span", "name principal", f.principal_name), " ", orgChip(f.principal_org));
          if (f.principal_secondary) {
            principal.appendChild(el("div", "muted", f.principal_secondary));
          }
          add(principal, hiddenFlag(f.hidden));
          var dl = el("dl");
          add(dl, el("dt", null, "Principal attribution"),
            add(el("dd"), evidenceList(f.principal_evidence, f.principal_conflict)));
          if (f.resource_id) {
            add(dl, el("dt", null, "Resource attribution"),
              add(el("dd"), evidenceList(f.resource_evidence, f.resource_conflict)));
          }
          if (f.detail) {
            add(dl, el("dt", null, "Detail"), el("dd", "detail", f.detail));
          }
          add(dl, el("dt", null, "Finding key"), add(el("dd"), el("code", "id", f.finding_key)));
          if (f.first_seen) {
            add(dl, el("dt", null, "First seen"), el("dd", null, f.first_seen));
          }
          // the rule's rationale is written once, in the rule appendix: each row links to it
          var why = el("a", null, "rule " + f.rule_id);
          why.href = "#appendix-" + encodeURIComponent(f.rule_id);
          var details = add(el("details", "evidence"), el("summary", null, "Evidence"),
            add(el("p", "rationale"), "Why it matters: ", why, " in the rule appendix"), dl);
          return add(el("tr", "finding-row"),
            td(sevChip(f.severity)),
            td(statusChip, f.change ? " " : null, changeChip(f.change)),
            td(el("span", "rule-title", doc.title), " ", el("code", "id", f.rule_id)),
            principal,
            td(el("span", "name resource", f.resource_name), f.resource_org ? " " : null,
              f.resource_org ? orgChip(f.resource_org) : null,
              f.resource_secondary ? el("div", "muted", f.resource_secondary) : null),
            td(pathList(f.path, f.path_partial, orgChip)),
            td(details));
        }
      }));
    }

    // A printed report should carry its evidence: every filtered row of each table in a shown
    // view (print CSS hides the pager), every <details> open. Paging comes back afterwards.
    window.addEventListener("beforeprint", function () {
      tables.forEach(function (t) {
        var view = t ? t.table.closest("div.view") : null;
        if (t && !(view && view.hidden)) {
          t.setPrinting(true);
        }
      });
      Array.prototype.forEach.call(document.querySelectorAll("details"), function (d) {
        d.open = true;
      });
    });
    window.addEventListener("afterprint", function () {
      tables.forEach(function (t) {
        if (t) {
          t.setPrinting(false);
        }
      });
    });
    // Lower-case the text the first filter would search while the page is idle.
    var tasks = ["id", "name", "secondary", "org"]
      .filter(function (f) {
        return objects.cols[f] && objects.cols[f].values;
      })
      .map(function (f) {
        return function () {
          lowered(objects.cols[f], "");
        };
      });
    tables.forEach(function (t) {
      if (t) {
        tasks = tasks.concat(t.warm());
      }
    });
    function warm(deadline) {
      while (tasks.length && deadline.timeRemaining() > 2) {
        tasks.shift()();
      }
      if (tasks.length) {
        window.requestIdleCallback(warm);
      }
    }
    if (window.requestIdleCallback) {
      window.requestIdleCallback(warm);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
