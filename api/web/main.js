// The GraphiQL page of `cairn serve`: GraphiQL with a token field above it. The token is kept in
// localStorage only once you save a non-empty one; "Forget" removes it. Requests read the field at
// the time they are sent, so changing the token needs no reload.
import React, { useState } from "react";
import { createRoot } from "react-dom/client";
import { GraphiQL } from "graphiql";
import { buildClientSchema } from "graphql";
import "graphiql/graphiql.css";

const KEY = "cairnToken";
const h = React.createElement;

function stored() {
  const t = window.localStorage.getItem(KEY);
  return t && t !== "null" && t !== "undefined" ? t : "";
}

async function fetcher(params) {
  const token = document.getElementById("cairn-token").value.trim();
  if (!token) {  // nothing is sent without a token: say what to do instead of collecting 401s
    return { errors: [{ message: "Enter a token above (create one with `cairn token create`) and press Save." }] };
  }
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  const res = await fetch(window.location.pathname, { method: "POST", headers, body: JSON.stringify(params) });
  return res.json();
}

function TokenBar({ onSaved }) {
  const [token, setToken] = useState(stored());
  const [note, setNote] = useState(stored() ? "saved in this browser" : "paste a token from `cairn token create`");
  const save = () => {
    const t = token.trim();
    if (t) {
      window.localStorage.setItem(KEY, t);
      setNote("saved in this browser");
      onSaved();  // GraphiQL reloads the schema with the new token
    } else {
      window.localStorage.removeItem(KEY);
      setNote("no token: requests are unauthenticated");
    }
  };
  const forget = () => {
    window.localStorage.removeItem(KEY);
    setToken("");
    setNote("forgotten");
  };
  return h("form", { className: "cairn-bar", onSubmit: (e) => { e.preventDefault(); save(); } },
    h("strong", null, "Cairn GraphQL"),
    h("label", { htmlFor: "cairn-token" }, "Token"),
    h("input", { id: "cairn-token", type: "password", autoComplete: "off", placeholder: "cairn_…", value: token,
                 onChange: (e) => setToken(e.target.value) }),
    h("button", { type: "submit", id: "cairn-save" }, "Save"),
    h("button", { type: "button", id: "cairn-forget", onClick: forget }, "Forget"),
    h("span", { className: "cairn-note", id: "cairn-note" }, note));
}

const DEFAULT_QUERY = `# Cairn GraphQL: catalogs, schemas, tables, grants, tags, lineage and the audit log.
{
  catalogs(first: 10) {
    edges { node { name owner comment } }
  }
}
`;

function App({ schema }) {
  const [generation, setGeneration] = useState(0);
  return h("div", { className: "cairn-page" },
    h(TokenBar, { onSaved: () => setGeneration((g) => g + 1) }),
    h("div", { className: "cairn-graphiql" },
      h(GraphiQL, { key: generation, fetcher, schema, defaultQuery: DEFAULT_QUERY, shouldPersistHeaders: false })));
}

// The schema comes from the server as one document: GraphiQL's own introspection query is deeper
// than the server lets any query be, so GraphiQL is given the schema instead of asking for it.
fetch("/static/graphiql/schema.json")
  .then((r) => r.json())
  .then((json) => buildClientSchema(json))
  .catch(() => null)
  .then((schema) => createRoot(document.getElementById("graphiql")).render(h(App, { schema })));
