// What every Uplink editor shares, under one name on the editor page. Each node's html carries this script (the build
// puts it there), so the first one loaded defines it and the others keep that one.
window.uplinkEditor =
  window.uplinkEditor ||
  (function () {
    /** Metadata names as the runtime reads them: a letter or _, then letters, digits, _ and -, at most 64. */
    var METADATA_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

    var validators = {
      /** A number from min to max (a whole one when integer); blank is fine, the runtime's default applies. */
      range: function (min, max, integer) {
        return function (v) {
          if (v === '' || v === undefined) return true;
          var n = Number(v);
          return !isNaN(n) && n >= min && n <= max && (!integer || Math.floor(n) === n);
        };
      },
      /** Blank, or a URL of one of these schemes ('rtsp:'). */
      urlOrEmpty: function (schemes) {
        return function (v) {
          if (v === '' || v === undefined) return true;
          var m = /^([a-z][a-z0-9+.-]*:)\/\/[^/?#]+/i.exec(String(v).trim());
          return !!m && schemes.indexOf(m[1].toLowerCase()) >= 0;
        };
      },
      /** Metadata rows: every named row with a valid name, no name twice; a row left empty is ignored. */
      metadata: function () {
        return function (rows) {
          if (!Array.isArray(rows)) return true;
          var seen = {};
          for (var i = 0; i < rows.length; i++) {
            var n = rows[i] && rows[i].name;
            if (!n && !(rows[i] && rows[i].value)) continue;
            if (!METADATA_NAME.test(n || '') || seen[n]) return false;
            seen[n] = true;
          }
          return true;
        };
      },
    };

    /**
     * A node saved by an earlier version lacks the settings added since, and the dialog would show them blank (and
     * save them blank): show their defaults instead. Lists and references to config nodes are left to Node-RED.
     */
    function showDefaults(node) {
      var prefix = node._def.category === 'config' ? '#node-config-input-' : '#node-input-';
      $.each(node._def.defaults, function (k, d) {
        var el = $(prefix + k);
        if (node[k] !== undefined || !el.length || d.type || typeof d.value === 'object') return;
        if (el.is(':checkbox')) el.prop('checked', !!d.value);
        else el.val(d.value);
      });
    }

    /** The metadata rows (the metadata partial) as an editable list of name and value. */
    var metadata = {
      prepare: function (node, placeholder) {
        var list = $('#node-input-metadata-container').css({ 'min-height': '90px', 'min-width': '420px' }).editableList({
          addItem: function (row, _index, data) {
            var name = $('<input type="text" class="uplink-meta-name" style="width: 35%; margin-right: 4px" />').attr('placeholder', placeholder.name).appendTo(row);
            var value = $('<input type="text" class="uplink-meta-value" style="width: 55%" />').attr('placeholder', placeholder.value).appendTo(row);
            name.val(data.name || '');
            value.val(data.value || '');
          },
          removable: true,
          sortable: true,
        });
        (Array.isArray(node.metadata) ? node.metadata : []).forEach(function (r) {
          list.editableList('addItem', r);
        });
      },
      /** The rows to save; empty ones are dropped. */
      rows: function () {
        var rows = [];
        $('#node-input-metadata-container')
          .editableList('items')
          .each(function () {
            var name = $(this).find('.uplink-meta-name').val().trim();
            var value = $(this).find('.uplink-meta-value').val();
            if (name !== '' || value !== '') rows.push({ name: name, value: value });
          });
        return rows;
      },
    };

    /** The ffmpeg source rows (the ffmpeg-source partial). */
    var ffmpegSource = {
      /** The kind of input as the runtime decides it: the input's own form first, then the Kind setting. */
      kind: function () {
        var input = $('#node-input-input').val() || '';
        if (/^rtsps?:\/\//i.test(input)) return 'rtsp';
        if (/^https?:\/\//i.test(input)) return 'mjpeg';
        if (/^\/dev\//.test(input)) return 'v4l2';
        if (/^lavfi:/.test(input)) return 'lavfi';
        return $('#node-input-kind').val();
      },
      /** Shows the RTSP transport for RTSP inputs only, and tells `onKind` (if given) the kind on every change. */
      prepare: function (onKind) {
        function update() {
          var kind = ffmpegSource.kind();
          $('.uplink-ffmpeg-rtsp').toggle(kind === 'rtsp');
          if (onKind) onKind(kind);
        }
        $('#node-input-input, #node-input-kind').on('change keyup', update);
        update();
      },
    };

    /**
     * A camera URL pasted with its login in it (http://admin:pass@192.168.1.20/snapshot.jpg): the login moves into the
     * User and Password fields, which Node-RED keeps in its credentials, and the URL field keeps the rest, so the
     * login never reaches the flow file. The split is the runtime's (lib/util/url-login.ts): the login ends at the last
     * @ of the address and the user name at its first :, percent-escapes decoded.
     */
    var urlLogin = {
      split: function (input) {
        var m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)/i.exec(input || '');
        var at = m ? m[2].lastIndexOf('@') : -1;
        if (at < 0) return { url: input };
        var login = m[2].slice(0, at);
        var colon = login.indexOf(':');
        var decode = function (t) {
          try {
            return decodeURIComponent(t);
          } catch (e) {
            return t;
          }
        };
        var out = { url: m[1] + m[2].slice(at + 1) + input.slice(m[0].length), username: decode(colon < 0 ? login : login.slice(0, colon)) };
        if (colon >= 0) out.password = decode(login.slice(colon + 1));
        return out;
      },
      /**
       * Moves a login out of the field `#node-input-<field>` into the User and Password fields, or into the two fields
       * a `{ url, login: [user field, password field] }` names (a node with a second login, as the recorder's relay);
       * true when there was one.
       */
      move: function (field) {
        var f = typeof field === 'string' ? { url: field, login: ['username', 'password'] } : field;
        var el = $('#node-input-' + f.url);
        var found = urlLogin.split(el.val());
        if (found.username === undefined) return false;
        el.val(found.url);
        $('#node-input-' + f.login[0]).val(found.username);
        $('#node-input-' + f.login[1]).val(found.password || '');
        return true;
      },
      /** Moves a login out of these URL fields whenever one changes (and again at save, see `save`). */
      prepare: function (fields) {
        fields.forEach(function (field) {
          $('#node-input-' + (typeof field === 'string' ? field : field.url)).on('change', function () {
            if (urlLogin.move(field) && RED.notify) RED.notify('The login in the URL was moved into User and Password (kept in Node-RED\'s credentials).', { type: 'compact', timeout: 4000 });
          });
        });
      },
      save: function (fields) {
        fields.forEach(function (field) {
          urlLogin.move(field);
        });
      },
    };

    /** The Dashboard 2.0 widgets (their html carries the dashboard-widget partial: name, group and size rows). */
    var dashboardWidget = {
      /**
       * Registers a widget: in the dashboard's palette category and colour, with the settings every widget has (name,
       * group, order, size) ahead of its own `def.defaults`. Without Dashboard 2.0 there is nothing to show a widget
       * in: the node type still loads (a flow that has one opens), but Node-RED keeps nodes of the 'deprecated'
       * category out of the palette.
       */
      register: function (type, def) {
        var dashboard = !RED.nodes.getType || !!RED.nodes.getType('ui-group');
        var t = function (key, fallback) {
          var v = typeof RED._ === 'function' ? RED._(key) : key;
          return v && v !== key ? v : fallback;
        };
        var defaults = {
          name: { value: '' },
          group: { type: 'ui-group', required: true },
          order: { value: 0 },
          width: { value: 0 },
          height: { value: 0 },
        };
        Object.keys(def.defaults).forEach(function (k) {
          defaults[k] = def.defaults[k];
        });
        var full = {
          category: dashboard ? t('@flowfuse/node-red-dashboard/ui-base:ui-base.label.category', 'dashboard 2') : 'deprecated',
          color: t('@flowfuse/node-red-dashboard/ui-base:ui-base.colors.medium', '#9fd6b9'),
        };
        Object.keys(def).forEach(function (k) {
          full[k] = k === 'defaults' ? defaults : def[k];
        });
        RED.nodes.registerType(type, full);
      },
      /** The dialog's shared part: defaults for settings added since the node was saved, and the size button. */
      prepare: function (node) {
        showDefaults(node);
        if ($.fn.elementSizer) {
          $('#node-input-size').elementSizer({ width: '#node-input-width', height: '#node-input-height', group: '#node-input-group' });
        }
      },
      /**
       * Fills the select `#node-input-<field>` with the nodes of `type` in the flows (by id, as the runtime finds
       * them), each shown as `label(n)` (its name, else its type) and its flow's name; `optional` adds "none".
       */
      pick: function (node, field, type, optional, label) {
        var select = $('#node-input-' + field).empty();
        if (optional) $('<option value=""></option>').text('none').appendTo(select);
        RED.nodes.filterNodes({ type: type }).forEach(function (n) {
          var tab = RED.nodes.workspace(n.z);
          $('<option></option>')
            .val(n.id)
            .text((label ? label(n) : n.name || n.type) + (tab ? ' (' + tab.label + ')' : ''))
            .appendTo(select);
        });
        select.val(node[field] || '');
      },
    };

    return {
      validators: validators,
      showDefaults: showDefaults,
      metadata: metadata,
      ffmpegSource: ffmpegSource,
      urlLogin: urlLogin,
      dashboardWidget: dashboardWidget,
    };
  })();
