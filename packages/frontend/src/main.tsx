import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { Root } from "./Session.tsx";
import { chooseClient } from "./kilnClient.ts";
import "./styles.css";

const root = document.getElementById("root");
if (!root) throw new Error("missing #root element");
const choice = chooseClient(window.location);
createRoot(root).render(
  <StrictMode>
    <Root choice={choice} />
  </StrictMode>,
);
