// The top bar: the gateway's version, base topic and agent bridges.
import { dom } from './dom.js';
import { state } from './store.js';
import { el, setText } from './util.js';

export function renderHeader() {
  setText(dom.version, state.version ? 'v' + state.version : '');
  setText(dom.baseTopic, state.base ? '\u00b7 ' + state.base : '');
  dom.bridges.replaceChildren();
  var agents = Array.from(state.bridges.keys()).sort();
  if (!agents.length) {
    dom.bridges.append(el('span', { class: 'muted', text: 'No agent reported yet' }));
    return;
  }
  dom.bridges.append(el('span', { text: agents.length === 1 ? 'Agent' : 'Agents' }));
  agents.forEach(function (a) {
    var st = state.bridges.get(a);
    dom.bridges.append(el('span', { class: 'bridge', 'data-agent': a, 'data-state': st, title: 'Bridge ' + a + ': ' + st },
      el('span', { class: 'agent', text: a }), ' ', el('span', { class: 'state', text: st })));
  });
}
