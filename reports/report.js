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

  function toObject(columns, row) {
    var obj = {};
    for (var i = 0; i < columns.length; i += 1) {
      obj[columns[i]] = row[i];
    }
    return obj;
  }

  function toObjects(data) {
    return data.rows.map(function (row) {
      return toObject(data.columns, row);
    });
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

  /* A filterable, sortable, paged table over `data` ({columns, rows} as embedded).
   * Each row becomes an object through cfg.prepare(object) only when it is first needed:
   * the first page on load, the rest (and their search text) in idle time after the first
   * paint, or all at once if a filter, select or sort needs them before. At 100,000
   * findings building them all up front was most of the first render's script time and
   * garbage collection.
   * cfg: prefix, data, pageSize, prepare(row) (optional), renderRow(row) -> <tr>,
   *      searchText(row) -> string,
   *      selects: [{id, key}], groupKey(row) (optional), renderGroup(row) -> <tr>,
   *      orderKey() (optional) -> null or row -> string: the grouped order when not sorted.
   * Returns {refresh, setPrinting, table} (or null when the table is not in the page);
   * setPrinting(true) renders every filtered row (a printout has no pager), false pages again. */
  function setupTable(cfg) {
    var prefix = cfg.prefix;
    var raw = cfg.data.rows;
    var columns = cfg.data.columns;
    var total = raw.length;
    var rows = new Array(total);
    var ready = 0;  // how many of rows[] are built; total once all are
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
      return { node: document.getElementById(s.id), key: s.key };
    });
    var search = new Array(total);

    function searchOf(i) {
      var text = search[i];
      if (text === undefined) {
        text = search[i] = cfg.searchText(row(i)).toLowerCase();
      }
      return text;
    }

    function row(i) {
      var r = rows[i];
      if (r === undefined) {
        r = toObject(columns, raw[i]);
        if (cfg.prepare) {
          cfg.prepare(r);
        }
        rows[i] = r;
        ready += 1;
      }
      return r;
    }

    function all() {
      if (ready < total) {
        for (var i = 0; i < total; i += 1) {
          row(i);
        }
      }
      return rows;
    }
    var state = { query: "", sortKey: null, sortType: "", sortDir: 1, page: 0 };
    var view = [];
    var printing = false;
    var headers = Array.prototype.slice.call(table.querySelectorAll("thead th[data-key]"));

    function compute() {
      var query = state.query;
      var wanted = selects.map(function (s) {
        return s.node ? s.node.value : "";
      });
      var keyOf = !state.sortKey && cfg.orderKey ? cfg.orderKey() : null;
      var out = [];
      if (!query && !state.sortKey && !keyOf && !wanted.some(Boolean)) {
        // the report's own order, nothing filtered: no row needs building
        for (var n = 0; n < total; n += 1) {
          out.push(n);
        }
        view = out;
        return;
      }
      all();
      for (var i = 0; i < total; i += 1) {
        if (query && searchOf(i).indexOf(query) === -1) {
          continue;
        }
        var keep = true;
        for (var j = 0; j < selects.length; j += 1) {
          if (wanted[j] && String(rows[i][selects[j].key]) !== wanted[j]) {
            keep = false;
            break;
          }
        }
        if (keep) {
          out.push(i);
        }
      }
      if (state.sortKey) {
        var key = state.sortKey;
        var type = state.sortType;
        var dir = state.sortDir;
        out.sort(function (a, b) {
          var x = rows[a][key];
          var y = rows[b][key];
          var c;
          if (type === "severity") {
            c = rank(x) - rank(y);
          } else if (type === "number") {
            c = Number(x) - Number(y);
          } else {
            c = collator.compare(String(x), String(y));
          }
          return c !== 0 ? c * dir : a - b;
        });
      } else if (keyOf) {
        var keys = {};
        out.forEach(function (i) {
          keys[i] = keyOf(rows[i]);
        });
        out.sort(function (a, b) {
          var c = collator.compare(keys[a], keys[b]);
          return c !== 0 ? c : a - b;
        });
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
        fragment.appendChild(cfg.renderRow(current));
      }
      while (body.firstChild) {
        body.removeChild(body.firstChild);
      }
      body.appendChild(fragment);
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
    // Build the rows and their search text while the page is idle, so that the first
    // filter or sort does not wait for them.
    var warmed = 0;
    function warm(deadline) {
      while (warmed < total && deadline.timeRemaining() > 2) {
        for (var end = Math.min(total, warmed + 500); warmed < end; warmed += 1) {
          searchOf(warmed);
        }
      }
      if (warmed < total) {
        window.requestIdleCallback(warm);
      }
    }
    if (window.requestIdleCallback) {
      window.requestIdleCallback(warm);
    }
    function setPrinting(on) {
      if (printing !== on) {
        printing = on;
        render();
      }
    }
    return { refresh: refresh, setPrinting: setPrinting, table: table };
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

    // Rows name accounts and groups by index into one shared objects table.
    var objectsData = readJSON("objects-data");
    var objects = objectsData ? toObjects(objectsData) : [];
    var NO_OBJECT = { id: "", name: "—", secondary: "", kind: "", org: "", evidence: [], conflict: false };
    function obj(index) {
      return index === null || index === undefined || !objects[index] ? NO_OBJECT : objects[index];
    }

    var tables = [];  // what setupTable returned: all rows are rendered for printing
    var actionsData = readJSON("worklist-data");
    if (actionsData) {
      var groupBy = document.getElementById("worklist-groupby");
      function bySystem() {
        return groupBy !== null && groupBy.value === "system";
      }
      var worklist = setupTable({
        prefix: "worklist",
        data: actionsData,
        pageSize: pageSize,
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
          { id: "worklist-severity", key: "severity" },
          { id: "worklist-apply", key: "apply_state" },
          { id: "worklist-org", key: "owning_org" },
          { id: "worklist-system", key: "system" }
        ],
        orderKey: function () {
          return bySystem() ? function (a) { return a.system || "~"; } : null;
        },
        searchText: function (a) {
          return [a.action_id, a.kind, a.severity, a.owning_org, a.group_name, a.group_id,
            a.member_name, a.member_id, a.member_org, a.summary, a.powershell, a.apply].join("\n");
        },
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

    var findingsData = readJSON("findings-data");
    if (findingsData) {
      tables.push(setupTable({
        prefix: "findings",
        data: findingsData,
        pageSize: pageSize,
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
          { id: "findings-severity", key: "severity" },
          { id: "findings-state", key: "status" },
          { id: "findings-change", key: "change" }
        ],
        searchText: function (f) {
          var doc = HAS.call(docs, f.rule_id) ? docs[f.rule_id] : { title: "" };
          var hops = (f.path || []).map(function (h) {
            return h.name;
          });
          return [f.finding_key, f.rule_id, doc.title, f.severity, f.status, f.principal_name,
            f.principal_secondary, f.principal_id, f.principal_org, f.resource_name,
            f.resource_secondary, f.resource_id, f.resource_org, f.detail].concat(hops).join("\n");
        },
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
          var details = add(el("details", "evidence"), el("summary", null, "Evidence"),
            el("p", "rationale", doc.rationale), dl);
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
    setupViews();
    document.documentElement.className += " js";
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
