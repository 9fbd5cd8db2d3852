// Small DOM helpers: elements are built with createElement and text nodes only, so
// values from the API never become markup.

const SVG = 'http://www.w3.org/2000/svg';

/** h builds an HTML element: h('td', {class: 'num'}, '15'). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** s builds an SVG element: s('rect', {x: 0, y: 0, width: 10, height: 10}). */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG, tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  return appendAll(el, children);
}

/** append adds children (nodes, strings, numbers, nested arrays; null and false are skipped). */
export function append(el, ...children) {
  return appendAll(el, children);
}

function appendAll(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** fill replaces the children of el. */
export function fill(el, ...children) {
  el.replaceChildren();
  return appendAll(el, children);
}
