pub mod topk;
